use digits::engine::kernels::ConvDims;
use digits::engine::winograd;
fn main() {
    digits::runtime::keep_freed_memory();
    let d = ConvDims::new(1024, 32, 192, 14, 14);
    let x: Vec<f32> = (0..d.batch * 32 * 196).map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0).collect();
    let w: Vec<f32> = (0..192 * 32 * 9).map(|i| ((i * 104729 % 1000) as f32) / 5000.0 - 0.1).collect();
    let u = winograd::transform_weights(&w, 192, 32);
    let b = vec![0.01f32; 192];
    for _ in 0..3 { std::hint::black_box(winograd::conv_forward_pooled_values(&x, &u, &b, d, true)); }
    let t = std::time::Instant::now();
    let reps = 20;
    for _ in 0..reps { std::hint::black_box(winograd::conv_forward_pooled_values(&x, &u, &b, d, true)); }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!("pooled values, 1024 images: {:.2} ms = {:.1} GFLOP/s of products", s * 1e3, 2.0 * 16.0 * 192.0 * 32.0 * 49.0 * 1024.0 / s / 1e9);
}

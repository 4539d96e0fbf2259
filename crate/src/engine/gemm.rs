//! A safe, row-major face on single-precision matrix multiply, on the `gemm` crate (pure Rust).
//!
//! `gemm` picks its kernels by the CPU's features at run time: AVX-512 where the CPU has it,
//! AVX2 with FMA on other x86-64 machines, NEON on ARM, scalar code elsewhere. So one binary
//! and one notebook build run the fastest kernels of every machine, and no system library is
//! needed. Measured on this project's machines it is level with OpenBLAS on the models' own
//! steps (`docs/performance.md`), so it is the only backend: every machine runs the same code.
//!
//! The numbers do not depend on the thread count (tested below), nor on the kernels' width:
//! `gemm`'s AVX-512 and AVX2 micro-kernels sum each output's terms in the same order (`make
//! width-test` compares whole runs), an inner dimension longer than 512 is cut into blocks
//! here rather than by `gemm`'s cache sizes (`depth_block`), and the few small products that
//! `gemm` would sum by vector lanes are computed here in order instead
//! ([`summed_by_vector_width`]). Each run records the kernels that trained it
//! ([`backend_name`]).

/// How a matrix operand is stored: row-major as written, or row-major storage of its transpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `rows × cols`, element `(r, c)` at `r * cols + c`.
    Normal,
    /// The operand is the transpose of the stored row-major matrix: element `(r, c)` at `c * rows + r`.
    Transposed,
}

/// A strided view of a matrix inside a slice: element `(r, c)` sits at `r * rs + c * cs`.
#[derive(Clone, Copy, Debug)]
pub struct Strides {
    pub rs: usize,
    pub cs: usize,
}

impl Strides {
    /// Row-major `rows × cols` stored as written.
    pub fn rows(cols: usize) -> Self {
        Strides { rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns, read in place.
    pub fn transposed(cols_of_stored: usize) -> Self {
        Strides {
            rs: 1,
            cs: cols_of_stored,
        }
    }
    fn reach(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.rs + (cols - 1) * self.cs + 1
        }
    }
}

/// `c (m×n) = a (m×k) · b (k×n)`, or `c += a·b` when `accumulate`; each operand is a strided
/// view (see [`Strides`]). `parallel` lets the GEMM split the work over rayon's threads: callers
/// that already run one product per thread pass `false`.
///
/// Panics when a slice is shorter than its view reaches: callers size buffers from the same
/// shapes, so a mismatch is a bug in this crate, never a user error.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    c: &mut [f32],
    sc: Strides,
    accumulate: bool,
    parallel: bool,
) {
    assert!(
        a.len() >= sa.reach(m, k) && b.len() >= sb.reach(k, n) && c.len() >= sc.reach(m, n),
        "matmul: buffer too small for its view"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for col in 0..n {
                    c[r * sc.rs + col * sc.cs] = 0.0;
                }
            }
        }
        return;
    }
    let factors = Factors {
        m,
        n,
        k,
        a: (a, sa),
        b: (b, sb),
    };
    if summed_by_vector_width(m, n, k) {
        factors.in_order((c, sc), accumulate);
        return;
    }
    if depth_blocks(k) > 1 {
        if parallel && m * n <= DEPTH_SPLIT_OUTPUTS {
            match column_pieces(m, n, k) {
                1 => factors.by_depth_blocks((c, sc), accumulate),
                pieces => factors.by_output_columns((c, sc), accumulate, pieces),
            }
        } else {
            factors.block_by_block((c, sc), accumulate, parallel);
        }
        return;
    }
    // Small products lose more to thread hand-off than they gain. The choice depends on the
    // shape alone: `gemm` blocks a product differently with and without threads (not with how
    // many), so choosing by the thread count would change the numbers with it.
    let parallelism = if parallel && m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above guarantees every index the strides reach lies inside its slice,
    // and `c` cannot alias `a` or `b` because it is borrowed mutably.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            sc.cs as isize,
            sc.rs as isize,
            accumulate,
            a.as_ptr(),
            sa.cs as isize,
            sa.rs as isize,
            b.as_ptr(),
            sb.cs as isize,
            sb.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The blocks an inner dimension of `k` is summed in: `⌈k / 512⌉` near-equal blocks, each
/// product from zero, the blocks added in order. `gemm` 0.19 cuts `k` the same way, but into
/// blocks of `max(512, a length from the L1 cache)` (`gemm-common`'s `cache::kernel_params`):
/// 512 on most machines, but 1,024 for its AVX2 kernels on a 48 KB, 12-way L1 (an Intel Xeon
/// with AVX-512, built without `gemm`'s AVX-512 kernels, summed the MLP and im2col's products
/// in other blocks, and `make width-test` failed). So the engine cuts every `k` over 512 itself:
/// each block is one of `gemm`'s on every CPU (it never cuts `k ≤ 512`), and the sums no longer
/// depend on the cache. Returns the block length.
fn depth_block(k: usize) -> usize {
    k.div_ceil(depth_blocks(k))
}

fn depth_blocks(k: usize) -> usize {
    k.div_ceil(512)
}

/// Whether `gemm` sums an inner dimension of `k` in one block, so that `c += a·b` rounds each
/// output as `c + (a·b)`, the product first rounded alone (with more blocks it adds each
/// block's sum onto `c` in turn).
pub fn sums_in_one_block(k: usize) -> bool {
    depth_blocks(k) == 1
}

/// How many pieces of its columns a product `m × n` with inner dimension `k`, split by depth,
/// is threaded over: one per thread, at most one per [`MIN_PIECE_COLUMNS`] columns, and none
/// whose block products `gemm` would sum off its micro-kernels ([`summed_by_vector_width`]),
/// which would change its bits. One piece means [`Factors::by_depth_blocks`] instead. Every
/// piece gives the same bits, so the count may follow the threads.
fn column_pieces(m: usize, n: usize, k: usize) -> usize {
    let pieces = rayon::current_num_threads()
        .min(n / MIN_PIECE_COLUMNS)
        .max(1);
    let narrowest = piece_columns(n, pieces).map(|(_, cols)| cols).min();
    match narrowest {
        Some(cols) if !summed_by_vector_width(m, cols, depth_block(k)) => pieces,
        _ => 1,
    }
}

/// `(first column, columns)` of each of the `pieces` pieces of `n` columns, in order: all as
/// wide as the first but the last.
fn piece_columns(n: usize, pieces: usize) -> impl Iterator<Item = (usize, usize)> {
    let width = n.div_ceil(pieces);
    (0..n)
        .step_by(width)
        .map(move |first| (first, width.min(n - first)))
}

/// Fewest columns of a piece of [`column_pieces`].
const MIN_PIECE_COLUMNS: usize = 32;

/// Most outputs of a product split by [`Factors::by_depth_blocks`]: `gemm` threads a product over
/// blocks of its output, and one this small (the dense layer's 128 × 128 from 9,408 inputs)
/// leaves the second thread little to do while the long inner dimension runs block by block.
const DEPTH_SPLIT_OUTPUTS: usize = 256 * 256;

/// The two factors of a product `a (m × k) · b (k × n)`, as strided views.
#[derive(Clone, Copy)]
struct Factors<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: (&'a [f32], Strides),
    b: (&'a [f32], Strides),
}

impl<'a> Factors<'a> {
    /// The factors of block `j` of the inner dimension ([`depth_block`]): columns of `a` and
    /// rows of `b`.
    fn depth_block(&self, j: usize) -> Factors<'a> {
        let kc = depth_block(self.k);
        let (p0, len) = (j * kc, kc.min(self.k - j * kc));
        let ((a, sa), (b, sb)) = (self.a, self.b);
        Factors {
            k: len,
            a: (&a[p0 * sa.cs..], sa),
            b: (&b[p0 * sb.rs..], sb),
            ..*self
        }
    }

    /// `c = a·b` (or `c += a·b`) through [`matmul_strided`].
    fn multiply_into(&self, (c, sc): (&mut [f32], Strides), accumulate: bool, parallel: bool) {
        let (Factors { m, n, k, .. }, (a, sa), (b, sb)) = (*self, self.a, self.b);
        matmul_strided(m, n, k, a, sa, b, sb, c, sc, accumulate, parallel);
    }

    /// `c = a·b` (or `c += a·b`) block of the inner dimension by block ([`depth_block`]),
    /// each block's product added onto `c` by `gemm` in order: what `gemm` does with blocks
    /// of that length, threaded over the output as `parallel` allows.
    fn block_by_block(&self, (c, sc): (&mut [f32], Strides), accumulate: bool, parallel: bool) {
        for j in 0..depth_blocks(self.k) {
            self.depth_block(j)
                .multiply_into((&mut *c, sc), accumulate || j > 0, parallel);
        }
    }

    /// The factors of columns `first..first + cols` of the product: those columns of `b`.
    fn columns(&self, first: usize, cols: usize) -> Factors<'a> {
        let (b, sb) = self.b;
        Factors {
            n: cols,
            b: (&b[first * sb.cs..], sb),
            ..*self
        }
    }

    /// `c = a·b` (or `c += a·b`) as [`Self::block_by_block`] computes it, `pieces` tasks each
    /// computing a piece of the output's columns block by block into a buffer of its own,
    /// then copied out: each output gets the same blocks' products added in the same order,
    /// so the same bits as [`Self::by_depth_blocks`]. Each task reads only its columns of `b`
    /// (the dense layer's weights), where blocks of depth read all of `b` between them and
    /// then add their partial outputs up on one thread.
    fn by_output_columns(&self, (c, sc): (&mut [f32], Strides), accumulate: bool, pieces: usize) {
        use rayon::prelude::*;
        let m = self.m;
        let pieces: Vec<(usize, usize)> = piece_columns(self.n, pieces).collect();
        let at = |i: usize, col: usize| i * sc.rs + col * sc.cs;
        let c_now: &[f32] = c;
        let parts: Vec<Vec<f32>> = pieces
            .par_iter()
            .map(|&(first, cols)| {
                let mut part = vec![0.0f32; m * cols];
                if accumulate {
                    for (i, row) in part.chunks_exact_mut(cols).enumerate() {
                        row.iter_mut()
                            .enumerate()
                            .for_each(|(j, v)| *v = c_now[at(i, first + j)]);
                    }
                }
                self.columns(first, cols).block_by_block(
                    (&mut part, Strides::rows(cols)),
                    accumulate,
                    false,
                );
                part
            })
            .collect();
        for (&(first, cols), part) in pieces.iter().zip(&parts) {
            for (i, row) in part.chunks_exact(cols).enumerate() {
                row.iter()
                    .enumerate()
                    .for_each(|(j, &v)| c[at(i, first + j)] = v);
            }
        }
    }

    /// `c = a·b` (or `c += a·b`) as [`Self::block_by_block`] computes it: each block's
    /// product from zero, then the blocks added onto `c` in order. Here the blocks' products
    /// run at once, one per thread, into buffers of their own, and are then added in that same
    /// order: the same operations in the same order, so the same bits.
    fn by_depth_blocks(&self, (c, sc): (&mut [f32], Strides), accumulate: bool) {
        use rayon::prelude::*;
        let (m, n) = (self.m, self.n);
        let blocks: Vec<Vec<f32>> = (0..depth_blocks(self.k))
            .into_par_iter()
            .map(|j| {
                let mut part = vec![0.0f32; m * n];
                self.depth_block(j)
                    .multiply_into((&mut part, Strides::rows(n)), false, false);
                part
            })
            .collect();
        for (j, part) in blocks.iter().enumerate() {
            for (i, row) in part.chunks_exact(n).enumerate() {
                for (col, &v) in row.iter().enumerate() {
                    let out = &mut c[i * sc.rs + col * sc.cs];
                    *out = if j == 0 && !accumulate { v } else { *out + v };
                }
            }
        }
    }

    /// `c = a·b` (or `c += a·b`), one output at a time, its terms summed in order by separate
    /// multiplies and adds (Rust never fuses them): the same bits on every CPU. For the small
    /// products of [`summed_by_vector_width`] only.
    fn in_order(&self, (c, sc): (&mut [f32], Strides), accumulate: bool) {
        let ((a, sa), (b, sb)) = (self.a, self.b);
        for i in 0..self.m {
            for j in 0..self.n {
                let mut sum = 0.0f32;
                for p in 0..self.k {
                    sum += a[i * sa.rs + p * sa.cs] * b[p * sb.rs + j * sb.cs];
                }
                let out = &mut c[i * sc.rs + j * sc.cs];
                *out = if accumulate { *out + sum } else { sum };
            }
        }
    }
}

/// Whether `gemm` may compute this product off its micro-kernels. In `gemm` 0.19 a product of
/// at most two terms per output, of one row or one column, or of at most 16 × 16 outputs runs
/// (in some operand layouts) as dot or vector products whose sums are split across the
/// vector's lanes, so their rounding follows the CPU's vector width (AVX-512 against AVX2).
/// The micro-kernels sum each output's terms in order, whatever the width. All such shapes
/// are summed here, whatever the layout, so the rule depends on the shape alone. In the models
/// these are the dense layers of a batch of a few images: a last partial batch, or one image
/// predicted alone. Kernels of ours that must round as [`matmul_strided`] does (the fused
/// Winograd products) take its path for these shapes.
pub fn summed_by_vector_width(m: usize, n: usize, k: usize) -> bool {
    k <= 2 || m <= 1 || n <= 1 || m * n <= 16 * 16
}

/// The version of the `gemm` crate the products run on (a test keeps it in step with Cargo.lock).
pub const GEMM_VERSION: &str = "0.19.0";

/// The instruction set of the kernels `gemm` picks on this CPU, as it picks them (at run time,
/// by the CPU's features): `AVX-512`, `AVX2+FMA`, `NEON` or `scalar`. It assumes `gemm`'s
/// AVX-512 kernels are built in, as crate/Cargo.toml asks (`make width-test`'s second build,
/// which leaves them out, still says `AVX-512`).
pub fn kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "AVX-512"
        } else if std::arch::is_x86_feature_detected!("fma") {
            "AVX2+FMA"
        } else {
            "scalar"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            "NEON"
        } else {
            "scalar"
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// What the products run on, as run records and the benchmark name it:
/// `gemm 0.19.0 (AVX2+FMA kernels)`. The same seed gives the same numbers with either width
/// (see the module's note), but a record says which ran, should a CPU ever disagree.
pub fn backend_name() -> String {
    format!("gemm {GEMM_VERSION} ({} kernels)", kernels())
}

/// `c (m×n) = a·b` (or `+=`) for plain row-major operands, `a` and `b` optionally stored transposed.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_layout: Layout,
    b: &[f32],
    b_layout: Layout,
    c: &mut [f32],
    accumulate: bool,
) {
    let sa = match a_layout {
        Layout::Normal => Strides::rows(k),
        Layout::Transposed => Strides::transposed(m),
    };
    let sb = match b_layout {
        Layout::Normal => Strides::rows(n),
        Layout::Transposed => Strides::transposed(k),
    };
    matmul_strided(m, n, k, a, sa, b, sb, c, Strides::rows(n), accumulate, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    s += av * bv;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_in_every_layout() {
        let (m, n, k) = (37, 29, 71);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
            .collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let la = if ta {
                Layout::Transposed
            } else {
                Layout::Normal
            };
            let lb = if tb {
                Layout::Transposed
            } else {
                Layout::Normal
            };
            let want = naive(m, n, k, &a, ta, &b, tb);
            let mut c = vec![1.0; m * n];
            matmul(m, n, k, &a, la, &b, lb, &mut c, false);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-3, "{x} vs {y} (ta={ta}, tb={tb})");
            }
            matmul(m, n, k, &a, la, &b, lb, &mut c, true);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 2e-3);
            }
        }
    }

    fn data(len: usize, salt: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + salt) % 13) as f32 / 7.0 - 0.9)
            .collect()
    }

    #[test]
    fn numbers_do_not_depend_on_the_thread_count() {
        // Shapes of every kind the models use: a long sum (several of gemm's k-blocks), a
        // transposed operand, a transposed output, sizes that leave partial tiles.
        #[rustfmt::skip]
        let cases = [
            (301, 190, 257, Strides::transposed(301), Strides::rows(190), Strides::rows(190)),
            (128, 224, 784, Strides::rows(784), Strides::rows(224), Strides::rows(224)),
            (224, 784, 128, Strides::transposed(224), Strides::rows(784), Strides::rows(784)),
            (67, 45, 2300, Strides::rows(2300), Strides::transposed(2300), Strides::transposed(67)),
        ];
        for (m, n, k, sa, sb, sc) in cases {
            let (a, b) = (data(sa.reach(m, k), 1), data(sb.reach(k, n), 2));
            let run = |threads: usize| {
                crate::runtime::with_threads(threads, || {
                    let mut c = data(sc.reach(m, n), 3);
                    matmul_strided(m, n, k, &a, sa, &b, sb, &mut c, sc, true, true);
                    c
                })
            };
            let one = run(1);
            for threads in [2, 3, 8] {
                let other = run(threads);
                let differ = one.iter().zip(&other).filter(|(x, y)| x != y).count();
                assert_eq!(
                    differ,
                    0,
                    "{differ} of {} elements differ between 1 and {threads} threads ({m}x{n}x{k})",
                    one.len()
                );
            }
        }
    }

    /// The products `gemm` would sum by vector lanes come out as the plain sum in order, bit for
    /// bit: a batch of one to a few images through a dense layer, forward and backward.
    #[test]
    fn small_products_are_summed_in_order_on_every_cpu() {
        for (m, n, k, ta, tb) in [
            (1, 128, 784, false, true),
            (16, 10, 128, false, true),
            (25, 10, 288, false, true),
            (10, 128, 2, true, false),
            (1, 784, 224, false, false),
        ] {
            assert!(summed_by_vector_width(m, n, k));
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let want = naive(m, n, k, &a, ta, &b, tb);
            let layout = |t: bool| {
                if t {
                    Layout::Transposed
                } else {
                    Layout::Normal
                }
            };
            let mut c = vec![0.5; m * n];
            matmul(m, n, k, &a, layout(ta), &b, layout(tb), &mut c, false);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k}");
        }
        // A product one row or column larger runs on gemm's micro-kernels.
        assert!(!summed_by_vector_width(26, 10, 128));
    }

    /// A product whose inner dimension spans several blocks and whose output is small runs its
    /// blocks at once (one thread) or pieces of its columns at once (more threads); either
    /// must round exactly as the blocks one after the other do (what the product without
    /// threads runs), onto a fresh or an existing output, and into a transposed one. The
    /// 9 × 64 product splits into pieces of 9 × 32; the 8 × 64 one does not, as `gemm`
    /// would sum pieces of 8 × 32 by vector lanes, nor does the 8 × 100 one on 3 threads,
    /// whose last piece would be 8 × 32.
    #[test]
    fn blocks_run_at_once_give_the_bits_of_blocks_run_in_turn() {
        #[rustfmt::skip]
        let cases = [
            (128, 128, 9408, Strides::rows(9408), Strides::transposed(9408), Strides::rows(128)),
            (128, 224, 784, Strides::rows(784), Strides::rows(224), Strides::rows(224)),
            (67, 45, 2300, Strides::rows(2300), Strides::transposed(2300), Strides::transposed(67)),
            (9, 64, 1000, Strides::rows(1000), Strides::rows(64), Strides::transposed(9)),
            (8, 64, 1000, Strides::rows(1000), Strides::rows(64), Strides::rows(64)),
            (8, 100, 1000, Strides::rows(1000), Strides::rows(100), Strides::rows(100)),
        ];
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (m, n, k, sa, sb, sc) in cases {
            assert!(depth_blocks(k) > 1 && m * n <= DEPTH_SPLIT_OUTPUTS);
            let (a, b) = (data(sa.reach(m, k), 1), data(sb.reach(k, n), 2));
            for accumulate in [false, true] {
                let run = |parallel: bool| {
                    let mut c = data(sc.reach(m, n), 3);
                    matmul_strided(m, n, k, &a, sa, &b, sb, &mut c, sc, accumulate, parallel);
                    c
                };
                let in_turn = bits(&run(false));
                for threads in [1, 2, 3, 8] {
                    let at_once = crate::runtime::with_threads(threads, || bits(&run(true)));
                    let differ = at_once.iter().zip(&in_turn).filter(|(x, y)| x != y).count();
                    assert_eq!(differ, 0, "{m}x{n}x{k} on {threads} threads");
                }
            }
        }
        assert_eq!((depth_blocks(9408), depth_block(9408)), (19, 496));
        let pieces =
            |threads, m, n| crate::runtime::with_threads(threads, || column_pieces(m, n, 1000));
        assert_eq!(
            [pieces(2, 128, 128), pieces(2, 9, 64), pieces(2, 8, 64)],
            [2, 2, 1]
        );
        // On 3 threads, 100 columns are pieces of 34, 34 and 32: 8 × 33 would run on the
        // micro-kernels, 8 × 32 not, so the product is not split.
        assert_eq!(pieces(3, 8, 100), 1);
    }

    /// With the inner dimension in one block, accumulating into `c` rounds as adding the
    /// product computed apart, which lets the layers add a gradient's product in place.
    #[test]
    fn one_block_products_accumulate_as_a_product_added_apart() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (m, n, k) in [
            (128, 9408, 128),
            (9408, 128, 128),
            (224, 784, 128),
            (37, 29, 512),
        ] {
            assert!(sums_in_one_block(k));
            let (a, b) = (data(k * m, 1), data(k * n, 2));
            let (at, bn) = (Layout::Transposed, Layout::Normal);
            let product_onto = |mut c: Vec<f32>, accumulate: bool| {
                matmul(m, n, k, &a, at, &b, bn, &mut c, accumulate);
                c
            };
            let start = data(m * n, 3);
            let product = product_onto(vec![0.0f32; m * n], false);
            let want: Vec<f32> = start.iter().zip(&product).map(|(c, p)| c + p).collect();
            let c = product_onto(start, true);
            assert_eq!(bits(&c), bits(&want), "{m}x{n}x{k}");
        }
        assert!(!sums_in_one_block(513));
    }

    #[test]
    fn names_the_kernels_it_runs() {
        let name = backend_name();
        assert!(
            name.starts_with(&format!("gemm {GEMM_VERSION} (")),
            "{name}"
        );
        assert!(
            ["AVX-512", "AVX2+FMA", "NEON", "scalar"].contains(&kernels()),
            "{}",
            kernels()
        );
    }

    #[test]
    fn gemm_version_matches_cargo_lock() {
        let lock = include_str!("../../../Cargo.lock");
        let pinned = lock.split("[[package]]").any(|entry| {
            entry.contains("name = \"gemm\"\n")
                && entry.contains(&format!("version = \"{GEMM_VERSION}\""))
        });
        assert!(
            pinned,
            "Cargo.lock has no gemm {GEMM_VERSION}: update GEMM_VERSION"
        );
    }
}

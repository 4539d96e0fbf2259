//! A safe, row-major face on single-precision matrix multiply, with two backends:
//!
//! - **OpenBLAS**, when the machine has it (Debian's `libopenblas0-pthread`), loaded at run
//!   time. On this project's machine its AVX2 kernels reach about 1.45 times the portable
//!   backend's peak and its AVX-512 ones about 2.5 times (measured in `docs/performance.md`).
//! - **portable**: the `gemm` crate, the same GEMM dfdx itself uses on the CPU. Pure Rust, always
//!   there; its kernels stop at AVX2/FMA on stable Rust.
//!
//! `DIGITS_GEMM=auto` (the default) takes OpenBLAS when it loads, `portable` forces the `gemm`
//! crate, `openblas` insists on OpenBLAS. Loading at run time (not linking) keeps the binary
//! and the notebooks working on any x86-64 machine, with or without the library, and picks
//! kernels by the CPU's features at run time, never at compile time.
//!
//! Both backends give the same numbers for any thread count; the two differ from each other by
//! rounding, so each run records the backend that trained it ([`backend_name`]).

use rayon::prelude::*;

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
    if let Some(sgemm) = openblas() {
        if let Some(call) = BlasCall::plan(m, n, k, sa, sb, sc) {
            blas_product(sgemm, &call, a, b, c, accumulate, parallel);
            return;
        }
    }
    portable(m, n, k, a, sa, b, sb, c, sc, accumulate, parallel);
}

/// The `gemm` crate's product (see [`matmul_strided`]), whatever the backend in use: the
/// benchmark measures both.
#[allow(clippy::too_many_arguments)]
pub fn portable(
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
    let threads = rayon::current_num_threads();
    // Small products lose more to thread hand-off than they gain.
    let parallelism = if parallel && threads > 1 && m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(threads)
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

/// Which backend the products use: `DIGITS_GEMM` (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Auto,
    OpenBlas,
    Portable,
}

/// The backend asked for by `DIGITS_GEMM`, or why the value is not one.
pub fn choice() -> Result<Choice, String> {
    match std::env::var("DIGITS_GEMM").as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(Choice::Auto),
        Ok("openblas") => Ok(Choice::OpenBlas),
        Ok("portable") => Ok(Choice::Portable),
        Ok(other) => Err(format!(
            "DIGITS_GEMM={other} is not a backend: use auto, openblas or portable"
        )),
    }
}

/// Check `DIGITS_GEMM` before any work: a bad value, or `openblas` on a machine without it,
/// is a one-line error (the products themselves fall back to the portable backend instead).
///
/// It also loads the backend now: OpenBLAS reads settings from the environment as it loads,
/// which is safest done before other threads run, so the CLI calls this first.
pub fn check_backend() -> Result<(), String> {
    let loaded = openblas().is_some();
    match choice()? {
        Choice::OpenBlas if !loaded => Err(
            "DIGITS_GEMM=openblas but OpenBLAS could not be loaded: install it (Debian: \
             apt install libopenblas0-pthread) or unset DIGITS_GEMM"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// The backend the products run on, as run records and the benchmark name it: `portable
/// (gemm 0.15)` or OpenBLAS's version and kernel, e.g. `OpenBLAS 0.3.21 … SkylakeX`.
pub fn backend_name() -> String {
    match openblas() {
        Some(lib) => {
            // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH … Haswell …": name and version.
            let version: Vec<&str> = lib.config.split_whitespace().take(2).collect();
            format!("{} ({} kernels)", version.join(" "), lib.core)
        }
        None => "portable (gemm 0.15)".into(),
    }
}

type Sgemm = unsafe extern "C" fn(
    order: libc::c_int,
    trans_a: libc::c_int,
    trans_b: libc::c_int,
    m: libc::c_int,
    n: libc::c_int,
    k: libc::c_int,
    alpha: f32,
    a: *const f32,
    lda: libc::c_int,
    b: *const f32,
    ldb: libc::c_int,
    beta: f32,
    c: *mut f32,
    ldc: libc::c_int,
);
const ROW_MAJOR: libc::c_int = 101;
const NO_TRANS: libc::c_int = 111;
const TRANS: libc::c_int = 112;

/// OpenBLAS, loaded once per process.
struct OpenBlas {
    sgemm: Sgemm,
    config: String,
    core: String,
    /// Keeps the library mapped for as long as `sgemm` may be called.
    _lib: libloading::Library,
}

/// OpenBLAS when the backend choice allows it and the library loads.
fn openblas() -> Option<&'static OpenBlas> {
    static LIB: std::sync::OnceLock<Option<OpenBlas>> = std::sync::OnceLock::new();
    LIB.get_or_init(|| match choice() {
        Ok(Choice::Auto) | Ok(Choice::OpenBlas) => load_openblas(),
        _ => None,
    })
    .as_ref()
}

fn load_openblas() -> Option<OpenBlas> {
    // OpenBLAS reads these when it loads. One thread per call: the callers parallelise over
    // rayon's threads themselves, so OpenBLAS's own pool would only oversubscribe the cores.
    // Its kernel choice is by CPU family, and the Debian build (0.3.21) predates the AVX-512
    // AMD cores; on a CPU with the features its SkylakeX kernels need, take those (measured
    // twice as fast as its AVX2 ones here). A value the user set is left alone.
    if std::env::var_os("OPENBLAS_NUM_THREADS").is_none() {
        std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    }
    #[cfg(target_arch = "x86_64")]
    if std::env::var_os("OPENBLAS_CORETYPE").is_none()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512cd")
    {
        std::env::set_var("OPENBLAS_CORETYPE", "SkylakeX");
    }
    for name in ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"] {
        // SAFETY: loading OpenBLAS runs its initialisers, which only read the environment
        // and the CPU's identification; the symbols are the C ABI its headers declare.
        let loaded = unsafe {
            let lib = match libloading::Library::new(name) {
                Ok(lib) => lib,
                Err(_) => continue,
            };
            let sgemm = match lib.get::<Sgemm>(b"cblas_sgemm\0") {
                Ok(f) => *f,
                Err(_) => continue,
            };
            let text = |sym: &[u8]| -> String {
                lib.get::<unsafe extern "C" fn() -> *const libc::c_char>(sym)
                    .ok()
                    .map(|f| {
                        let p = f();
                        if p.is_null() {
                            String::new()
                        } else {
                            std::ffi::CStr::from_ptr(p)
                                .to_string_lossy()
                                .trim()
                                .to_string()
                        }
                    })
                    .unwrap_or_default()
            };
            let (config, core) = (
                text(b"openblas_get_config\0"),
                text(b"openblas_get_corename\0"),
            );
            if let Ok(set_threads) =
                lib.get::<unsafe extern "C" fn(libc::c_int)>(b"openblas_set_num_threads\0")
            {
                set_threads(1);
            }
            OpenBlas {
                sgemm,
                config: if config.is_empty() {
                    "OpenBLAS".into()
                } else {
                    config
                },
                core,
                _lib: lib,
            }
        };
        return Some(loaded);
    }
    None
}

/// One product in BLAS's terms: row-major `c`, each operand normal or transposed with its
/// leading dimension. `None` when a view has no unit stride (never the case in this crate,
/// but then the portable backend takes it).
#[derive(Clone, Copy, Debug)]
struct BlasCall {
    m: usize,
    n: usize,
    k: usize,
    /// `true`: `c` is stored transposed, so compute `cᵀ = bᵀ·aᵀ` instead.
    swap: bool,
    trans_a: libc::c_int,
    lda: usize,
    trans_b: libc::c_int,
    ldb: usize,
    ldc: usize,
}

impl BlasCall {
    fn plan(m: usize, n: usize, k: usize, sa: Strides, sb: Strides, sc: Strides) -> Option<Self> {
        let flip = |s: Strides| Strides { rs: s.cs, cs: s.rs };
        let (swap, m, n, sa, sb, sc) = if sc.cs == 1 && (sc.rs >= n || m == 1) {
            (false, m, n, sa, sb, sc)
        } else if sc.rs == 1 && (sc.cs >= m || n == 1) {
            (true, n, m, flip(sb), flip(sa), flip(sc))
        } else {
            return None;
        };
        // A `rows × cols` operand: normal when its rows are contiguous, else transposed.
        let operand = |s: Strides, rows: usize, cols: usize| {
            if s.cs == 1 && (s.rs >= cols || rows == 1) {
                Some((NO_TRANS, s.rs.max(cols).max(1)))
            } else if s.rs == 1 && (s.cs >= rows || cols == 1) {
                Some((TRANS, s.cs.max(rows).max(1)))
            } else {
                None
            }
        };
        let (trans_a, lda) = operand(sa, m, k)?;
        let (trans_b, ldb) = operand(sb, k, n)?;
        let ldc = sc.rs.max(n).max(1);
        let fits = [m, n, k, lda, ldb, ldc]
            .iter()
            .all(|&v| v <= i32::MAX as usize);
        fits.then_some(BlasCall {
            m,
            n,
            k,
            swap,
            trans_a,
            lda,
            trans_b,
            ldb,
            ldc,
        })
    }
}

/// Row blocks a large product is cut into for rayon's threads (see [`blas_product`]).
const ROW_BLOCKS: usize = 4;
/// Block heights are multiples of this: OpenBLAS's kernels round an element differently in
/// a block's last rows than in its first ones, so blocks start where its tiles would.
const ROW_ALIGN: usize = 16;

/// Run a planned product with single-threaded OpenBLAS calls. When `parallel` and large, the
/// rows of `c` are cut into [`ROW_BLOCKS`] fixed blocks run on rayon's threads: the cut depends
/// on the shape alone, never on the thread count, so neither do the numbers.
fn blas_product(
    lib: &OpenBlas,
    call: &BlasCall,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    let (a, b) = if call.swap { (b, a) } else { (a, b) };
    let rows_per = if parallel && call.m * call.n * call.k >= 64 * 64 * 64 {
        call.m.div_ceil(ROW_BLOCKS).next_multiple_of(ROW_ALIGN)
    } else {
        call.m
    };
    let parts = call.m.div_ceil(rows_per.max(1));
    // Where row r of a begins: a normal operand's rows are `lda` apart, a transposed one's 1.
    let a_row = |r: usize| {
        if call.trans_a == NO_TRANS {
            r * call.lda
        } else {
            r
        }
    };
    let run = |r0: usize, rows: usize, c_part: &mut [f32]| {
        // SAFETY: `plan` derived every leading dimension from views that `matmul_strided`
        // checked against the slices; `c_part` starts at row r0 of c and `a` at row r0 of a.
        unsafe {
            (lib.sgemm)(
                ROW_MAJOR,
                call.trans_a,
                call.trans_b,
                rows as libc::c_int,
                call.n as libc::c_int,
                call.k as libc::c_int,
                1.0,
                a[a_row(r0)..].as_ptr(),
                call.lda as libc::c_int,
                b.as_ptr(),
                call.ldb as libc::c_int,
                if accumulate { 1.0 } else { 0.0 },
                c_part.as_mut_ptr(),
                call.ldc as libc::c_int,
            );
        }
    };
    if parts == 1 {
        run(0, call.m, c);
        return;
    }
    let mut pieces = Vec::with_capacity(parts);
    let mut rest = c;
    for p in 0..parts {
        let r0 = p * rows_per;
        if r0 >= call.m {
            break;
        }
        let rows = rows_per.min(call.m - r0);
        let take = if r0 + rows == call.m {
            rest.len()
        } else {
            rows * call.ldc
        };
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
        pieces.push((r0, rows, head));
        rest = tail;
    }
    pieces
        .into_par_iter()
        .for_each(|(r0, rows, part)| run(r0, rows, part));
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
        // Both the backend in use (OpenBLAS when installed) and the portable one.
        let (m, n, k) = (301, 190, 257);
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let (sa, s) = (Strides::transposed(m), Strides::rows);
        for (name, portable_only) in [(backend_name(), false), ("portable".to_string(), true)] {
            let run = |threads: usize| {
                crate::engine::with_threads(threads, || {
                    let mut c = data(m * n, 3);
                    if portable_only {
                        portable(m, n, k, &a, sa, &b, s(n), &mut c, s(n), true, true);
                    } else {
                        matmul_strided(m, n, k, &a, sa, &b, s(n), &mut c, s(n), true, true);
                    }
                    c
                })
            };
            let (one, three) = (run(1), run(3));
            let differ = one.iter().zip(&three).filter(|(x, y)| x != y).count();
            assert_eq!(
                differ,
                0,
                "{differ} of {} elements differ ({name})",
                one.len()
            );
        }
    }

    #[test]
    fn openblas_agrees_with_the_portable_backend() {
        // Every stride pattern the crate uses, including a transposed output, matches the gemm
        // crate up to rounding. Only meaningful where OpenBLAS is what the products run on.
        if openblas().is_none() {
            crate::runtime::skip_unless_required(
                "openblas",
                "OpenBLAS is not installed, so there is no second backend to compare",
            );
            return;
        }
        assert!(backend_name().starts_with("OpenBLAS"), "{}", backend_name());
        let (m, n, k) = (67, 45, 130);
        let (a, b) = (data(m * k, 4), data(k * n, 5));
        let cases = [
            (Strides::rows(k), Strides::rows(n), Strides::rows(n)),
            (
                Strides::transposed(m),
                Strides::transposed(k),
                Strides::rows(n),
            ),
            (Strides::rows(k), Strides::rows(n), Strides::transposed(m)),
            (
                Strides { rs: k + 3, cs: 1 },
                Strides::rows(n),
                Strides { rs: n + 5, cs: 1 },
            ),
        ];
        for (sa, sb, sc) in cases {
            let len = sc.reach(m, n) + 8;
            let a = data(sa.reach(m, k), 4);
            let b = data(sb.reach(k, n), 5);
            for accumulate in [false, true] {
                let mut got = data(len, 6);
                let mut want = got.clone();
                matmul_strided(m, n, k, &a, sa, &b, sb, &mut got, sc, accumulate, true);
                portable(m, n, k, &a, sa, &b, sb, &mut want, sc, accumulate, true);
                for (x, y) in got.iter().zip(&want) {
                    assert!(
                        (x - y).abs() < 1e-4 * (1.0 + y.abs()),
                        "{x} vs {y} ({sa:?} {sb:?} {sc:?})"
                    );
                }
            }
        }
        let _ = (a, b);
    }
}

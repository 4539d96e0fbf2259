//! A safe, row-major face on the `gemm` crate (the same GEMM dfdx itself uses on the CPU).

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
}

//! The Winograd products of a few output channels at a time, written to a buffer small enough
//! to stay in cache.
//!
//! Why: with `gemm` the forward pass writes all 16 product matrices `M[ξ] (O × T)` of a pass
//! (6 MB at 192 channels and 490 tiles) and the output transform then reads them back. Each
//! float of `M` is used once, by a few additions, so that round trip through memory cost as
//! much as a third of the convolution's time. Here a block of output channels gets its 16
//! products for one group of images (a few hundred KB), and the output transform reads them
//! while they are still in this core's cache.
//!
//! **The same bits as `gemm`.** `gemm` 0.19's kernels start each output at zero and add the
//! inner dimension's products one at a time, in order, each by one fused multiply-add
//! (`gemm-common`'s `microkernel!`: `accum = mul_add(lhs, rhs, accum)` over `k`, then
//! `dst = beta · accum` with `beta = 1`), on every x86-64 machine with FMA. The kernels here
//! do the same operations in the same order: `acc = fma(u, v, acc)` from `acc = 0` over the
//! input channels, with AVX-512 or AVX2 instructions (the widths [`super::simd::lanes`]
//! names). The unit test below checks each output against that chain written out; the
//! training runs of `crate/tests/simd.rs` and `make width-test` check whole runs against the
//! `gemm` path, bit for bit.

/// Output channels per task block: a whole number of register blocks at either width (12 rows
/// of two 16-lane vectors on AVX-512, twice 6 rows of two 8-lane vectors on AVX2).
pub const BLOCK_ROWS: usize = 12;

/// Columns of the products' rows: whole vectors of the widest kernel (two of 16 lanes).
pub const fn padded(n: usize) -> usize {
    n.next_multiple_of(32)
}

/// Where [`block_products`] puts output `(i, t)` of product ξ in a block of `rows` rows: in
/// runs of 16 columns, each run row by row, each row's 16 products together
/// (`[stride / 16][rows][ξ][16]`), so that the output transform of 16 tiles reads one
/// contiguous KB, and a kernel's stores to its rows fall in different cache sets.
#[inline(always)]
pub const fn at(i: usize, t: usize, xi: usize, rows: usize) -> usize {
    ((t / 16) * rows + i) * 256 + xi * 16 + t % 16
}

/// The transformed weights `u` (16 matrices `c_out × c_in`, `[ξ][O][C]`) laid out for
/// [`block_products`], once per convolution: block by block of [`BLOCK_ROWS`] output channels
/// (the last may be smaller), each block's 16 matrices as `[ξ][C][rows]`, so that an input
/// channel's row of broadcasts is contiguous. The block of `o0` starts at `16 · c_in · o0`.
pub fn pack_weights(u: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    assert_eq!(u.len(), 16 * c_out * c_in, "transformed weights' size");
    let mut packed = vec![0.0f32; u.len()];
    for o0 in (0..c_out).step_by(BLOCK_ROWS) {
        let rows = BLOCK_ROWS.min(c_out - o0);
        let block = &mut packed[16 * c_in * o0..][..16 * c_in * rows];
        for (xi, dst) in block.chunks_exact_mut(c_in * rows).enumerate() {
            let u_xi = &u[(xi * c_out + o0) * c_in..][..rows * c_in];
            for (i, row) in u_xi.chunks_exact(c_in).enumerate() {
                for (c, w) in row.iter().enumerate() {
                    dst[c * rows + i] = *w;
                }
            }
        }
    }
    packed
}

/// `m[at(i, t, ξ)] = Σ_c u[ξ][o0 + i][c] · v[c·16 + ξ][col + t]` for the `rows` output
/// channels of one block from `o0` (`rows` = [`BLOCK_ROWS`] but in the last) and `t < n`,
/// every sum in the input channels' order, each term by one fused multiply-add.
///
/// - `packed`: the weights from [`pack_weights`], all blocks;
/// - `v`: the transformed input of a pass, rows of `v_cols` laid out `[C][ξ][T]`;
/// - `m`: `16 · rows · padded(n)` values, placed by [`at`]; the columns from `n` on get
///   zeros.
///
/// `lanes` is the vector width [`super::simd::lanes`] gave: 16 runs the AVX-512 kernel, 8 the
/// AVX2 one.
///
/// # Panics
/// On a `lanes` whose instructions this CPU lacks, or buffers too small for the shapes.
#[allow(clippy::too_many_arguments)]
pub fn block_products(
    packed: &[f32],
    (c_out, c_in): (usize, usize),
    (o0, rows): (usize, usize),
    v: &[f32],
    v_cols: usize,
    (col, n): (usize, usize),
    lanes: usize,
    m: &mut [f32],
) {
    assert!(o0 + rows <= c_out, "output channels out of range");
    assert!(
        o0.is_multiple_of(BLOCK_ROWS) && (rows == BLOCK_ROWS || o0 + rows == c_out),
        "one block of output channels"
    );
    assert_eq!(packed.len(), 16 * c_out * c_in, "packed weights' size");
    assert!(
        v.len() >= 16 * c_in * v_cols && col + n <= v_cols,
        "input tiles' size"
    );
    let stride = padded(n);
    assert!(m.len() >= 16 * rows * stride, "products' buffer size");
    let block = &packed[16 * c_in * o0..][..16 * c_in * rows];
    for (xi, u) in block.chunks_exact(c_in * rows).enumerate() {
        let product = Product {
            u,
            rows,
            v: &v[xi * v_cols + col..],
            v_stride: 16 * v_cols,
            c_in,
            n,
            stride,
            xi,
        };
        product.run(lanes, &mut m[..16 * rows * stride]);
    }
}

/// One product `m (rows × n) = uᵀ · v`: `u` packed `[C][rows]`, row `c` of `v` at
/// `v[c·v_stride..][..n]`, output `(i, t)` at `m[at(i, t, xi, rows)]`, columns up to
/// `stride` (a whole number of vectors).
struct Product<'a> {
    u: &'a [f32],
    rows: usize,
    v: &'a [f32],
    v_stride: usize,
    c_in: usize,
    n: usize,
    stride: usize,
    xi: usize,
}

impl Product<'_> {
    /// Run the kernel of `lanes` lanes, register block by register block, into `m`
    /// (the block's `16 · rows · stride` values).
    fn run(&self, lanes: usize, m: &mut [f32]) {
        assert!(self.v.len() >= (self.c_in - 1) * self.v_stride + self.n);
        assert_eq!(m.len(), 16 * self.rows * self.stride);
        assert!(self.stride.is_multiple_of(32) && self.stride >= self.n);
        match lanes {
            #[cfg(target_arch = "x86_64")]
            // SAFETY (both): the CPU has the kernel's features (checked in the guard), `blocks`
            // passes rows inside `rows`, and `m`, `u` and `v` are the sizes asserted above.
            16 if super::simd::has_avx512() => self.blocks(12, |r, take| unsafe {
                match take {
                    12 => x86::avx512::<12>(self, r, m),
                    _ => x86::avx512::<1>(self, r, m),
                }
            }),
            #[cfg(target_arch = "x86_64")]
            8 if super::simd::has_avx2_fma() => self.blocks(6, |r, take| unsafe {
                match take {
                    6 => x86::avx2::<6>(self, r, m),
                    _ => x86::avx2::<1>(self, r, m),
                }
            }),
            _ => panic!("no {lanes}-lane kernel on this CPU"),
        }
    }

    /// Call `kernel(first row, rows)` on blocks of `block` rows, the last few rows one at a
    /// time.
    #[inline(always)]
    fn blocks(&self, block: usize, mut kernel: impl FnMut(usize, usize)) {
        let mut r = 0;
        while r < self.rows {
            let take = if r + block <= self.rows { block } else { 1 };
            kernel(r, take);
            r += take;
        }
    }
}

/// The kernels: two vectors of columns by `R` rows of accumulators, the partial last columns
/// by masked loads (masked-off lanes are never read from memory, and come out zero).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Product;
    use std::arch::x86_64::*;

    /// Rows `r0..r0 + R` of `p` into the block's `m`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `p.v` holds `c_in` rows of `n` at stride `v_stride`, `p.u` holds
    /// `c_in × rows`, `m` holds `16 · rows · stride`, `r0 + R ≤ rows`, and `stride` is a
    /// multiple of 32 at least `n`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512<const R: usize>(p: &Product, r0: usize, m: &mut [f32]) {
        let mask = |left: usize| -> __mmask16 {
            if left >= 16 {
                0xffff
            } else {
                ((1u32 << left) - 1) as __mmask16
            }
        };
        let mut t = 0;
        while t < p.stride {
            let left = p.n.saturating_sub(t);
            let (k0, k1) = (mask(left), mask(left.saturating_sub(16)));
            let mut acc0 = [_mm512_setzero_ps(); R];
            let mut acc1 = [_mm512_setzero_ps(); R];
            for c in 0..p.c_in {
                let row = p.v.as_ptr().add(c * p.v_stride + t);
                let x0 = _mm512_maskz_loadu_ps(k0, row);
                let x1 = _mm512_maskz_loadu_ps(k1, row.add(16));
                let w = p.u.as_ptr().add(c * p.rows + r0);
                for i in 0..R {
                    let wi = _mm512_set1_ps(*w.add(i));
                    acc0[i] = _mm512_fmadd_ps(wi, x0, acc0[i]);
                    acc1[i] = _mm512_fmadd_ps(wi, x1, acc1[i]);
                }
            }
            for i in 0..R {
                let out = m.as_mut_ptr();
                _mm512_storeu_ps(out.add(super::at(r0 + i, t, p.xi, p.rows)), acc0[i]);
                _mm512_storeu_ps(out.add(super::at(r0 + i, t + 16, p.xi, p.rows)), acc1[i]);
            }
            t += 32;
        }
    }

    /// As [`avx512`], with 8-lane vectors.
    ///
    /// # Safety
    /// As [`avx512`], the CPU having AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<const R: usize>(p: &Product, r0: usize, m: &mut [f32]) {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = |left: usize| _mm256_cmpgt_epi32(_mm256_set1_epi32(left.min(8) as i32), lane);
        let mut t = 0;
        while t < p.stride {
            let left = p.n.saturating_sub(t);
            let (k0, k1) = (mask(left), mask(left.saturating_sub(8)));
            let mut acc0 = [_mm256_setzero_ps(); R];
            let mut acc1 = [_mm256_setzero_ps(); R];
            for c in 0..p.c_in {
                let row = p.v.as_ptr().add(c * p.v_stride + t);
                let x0 = _mm256_maskload_ps(row, k0);
                let x1 = _mm256_maskload_ps(row.add(8), k1);
                let w = p.u.as_ptr().add(c * p.rows + r0);
                for i in 0..R {
                    let wi = _mm256_set1_ps(*w.add(i));
                    acc0[i] = _mm256_fmadd_ps(wi, x0, acc0[i]);
                    acc1[i] = _mm256_fmadd_ps(wi, x1, acc1[i]);
                }
            }
            for i in 0..R {
                let out = m.as_mut_ptr();
                _mm256_storeu_ps(out.add(super::at(r0 + i, t, p.xi, p.rows)), acc0[i]);
                _mm256_storeu_ps(out.add(super::at(r0 + i, t + 8, p.xi, p.rows)), acc1[i]);
            }
            t += 16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::simd;

    /// Every output is the fused multiply-add chain over the input channels in order, whatever
    /// the lane width, in whole and partial blocks of output channels and columns that leave a
    /// partial vector.
    #[test]
    fn each_output_is_the_ordered_chain_of_fused_multiply_adds() {
        let (c_out, c_in, v_cols) = (29, 7, 40);
        let val = |i: usize, s: f32| ((i * 2654435761) % 1000) as f32 / 997.0 * s - 0.3;
        let u: Vec<f32> = (0..16 * c_out * c_in).map(|i| val(i, 1.1)).collect();
        let v: Vec<f32> = (0..16 * c_in * v_cols).map(|i| val(i + 7, 0.9)).collect();
        let (col, n) = (5, 35);
        let have = |l: usize| match l {
            16 => simd::has_avx512(),
            _ => simd::has_avx2_fma(),
        };
        let packed = pack_weights(&u, c_out, c_in);
        // Two whole blocks of 12 output channels and a last block of 5.
        let blocks = (0..c_out)
            .step_by(BLOCK_ROWS)
            .map(|o0| (o0, BLOCK_ROWS.min(c_out - o0)));
        for (lanes, (o0, rows)) in [16, 8]
            .into_iter()
            .filter(|l| have(*l))
            .flat_map(|l| blocks.clone().map(move |b| (l, b)))
        {
            let stride = padded(n);
            let mut m = vec![f32::NAN; 16 * rows * stride];
            block_products(
                &packed,
                (c_out, c_in),
                (o0, rows),
                &v,
                v_cols,
                (col, n),
                lanes,
                &mut m,
            );
            for xi in 0..16 {
                for i in 0..rows {
                    for t in 0..n {
                        let mut want = 0.0f32;
                        for c in 0..c_in {
                            let w = u[(xi * c_out + o0 + i) * c_in + c];
                            want = w.mul_add(v[(c * 16 + xi) * v_cols + col + t], want);
                        }
                        let got = m[at(i, t, xi, rows)];
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "lanes {lanes}, ξ {xi}, {i}, {t}"
                        );
                    }
                    let pad = (n..stride).map(|t| m[at(i, t, xi, rows)]);
                    assert!(pad.into_iter().all(|p| p == 0.0), "lanes {lanes}: padding");
                }
            }
        }
    }
}

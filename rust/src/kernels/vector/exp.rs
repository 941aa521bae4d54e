//! e^x in arithmetic the compiler can vectorise: no libm call, no conversion
//! of a float to an integer, so that a loop of sigmoids becomes vector code.

/// exp(x) within about 1 ulp for x in [-708, 709], clamped outside it (which
/// moves a sigmoid by less than 1e-307). x = n ln2 + r with |r| <= ln2/2; e^r
/// by Horner's rule on its Taylor series to r^13 (the remainder is below 5e-18
/// of the result); 2^n built in the exponent bits. Adding 1.5 * 2^52 rounds
/// x/ln2 to an integer n and leaves n in the low bits, so nothing converts a
/// float to an integer (which AVX2 cannot do in vectors). `fused`: each
/// step of Horner's rule one fused multiply-add (call it so only where the
/// CPU has them: elsewhere `mul_add` is a libm call per element).
#[inline(always)]
pub fn exp64(x: f64, fused: bool) -> f64 {
    const ROUND: f64 = 6755399441055744.0; // 1.5 * 2^52
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // ln 2 to 32 bits: n * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 709.0); // NaN stays NaN
    let t = x * std::f64::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p: f64 = 1.0 / 6_227_020_800.0; // 1/13!
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = if fused { p.mul_add(r, c) } else { p * r + c };
    }
    p * f64::from_bits(t.to_bits().wrapping_add(1023) << 52)
}

/// exp(x) in f32 within 2 ulp for x in [-87, 88], clamped outside (a sigmoid
/// moves by less than 1e-38): as `exp64`, to r^7.
#[inline(always)]
pub fn exp32(x: f32, fused: bool) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p: f32 = 1.0 / 5_040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = if fused { p.mul_add(r, c) } else { p * r + c };
    }
    p * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp64_is_within_two_ulp_of_libm() {
        let mut x: f64 = -708.0;
        while x < 709.0 {
            for fused in [false, true] {
                let (want, got) = (x.exp(), exp64(x, fused));
                assert!(((got - want) / want).abs() < 4.5e-16, "exp64({x}, {fused}) = {got}, libm {want}");
            }
            x += 0.0137;
        }
        for fused in [false, true] {
            assert!(exp64(f64::NAN, fused).is_nan());
            assert!(exp64(-1e4, fused) > 0.0 && exp64(-1e4, fused) < 1e-307);
        }
    }

    #[test]
    fn exp32_is_within_three_ulp_of_libm() {
        let mut x = -87.0f32;
        while x < 88.0 {
            for fused in [false, true] {
                let (want, got) = ((x as f64).exp(), exp32(x, fused) as f64);
                assert!(((got - want) / want).abs() < 3.6e-7, "exp32({x}, {fused}) = {got}, exact {want}");
            }
            x += 0.0071;
        }
    }
}

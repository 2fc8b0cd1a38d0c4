//! Serde forms of half-precision vectors as their raw 16-bit patterns, so
//! compact stores keep every value (NaN payloads too) without a float detour.

macro_rules! bits_module {
    ($name:ident, $t:ty) => {
        /// Serializes a vector of this half type as its `u16` bit patterns.
        pub mod $name {
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            /// Writes the bit patterns.
            pub fn serialize<S: Serializer>(values: &[$t], s: S) -> Result<S::Ok, S::Error> {
                let bits: Vec<u16> = values.iter().map(|v| v.to_bits()).collect();
                bits.serialize(s)
            }

            /// Reads the bit patterns back.
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<$t>, D::Error> {
                let bits = Vec::<u16>::deserialize(d)?;
                Ok(bits.into_iter().map(<$t>::from_bits).collect())
            }
        }
    };
}

bits_module!(f16_vec, half::f16);
bits_module!(bf16_vec, half::bf16);

#[cfg(test)]
mod tests {
    use crate::TensorData;
    use half::{bf16, f16};

    #[test]
    fn half_tensors_round_trip_through_serde_bit_exactly() {
        for data in [
            TensorData::Fp16(vec![f16::from_f32(1.5), f16::NAN, f16::NEG_INFINITY]),
            TensorData::Bf16(vec![bf16::from_f32(-2.0), bf16::MAX, bf16::NAN]),
        ] {
            let json = serde_json::to_string(&data).expect("serializes");
            let back: TensorData = serde_json::from_str(&json).expect("deserializes");
            let bits = |d: &TensorData| match d {
                TensorData::Fp16(v) => v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                TensorData::Bf16(v) => v.iter().map(|x| x.to_bits()).collect(),
                _ => Vec::new(),
            };
            assert_eq!(bits(&back), bits(&data), "{json}");
        }
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Model outputs → per-item results: batch splitting, masking, label mapping.

use ndarray::ArrayD;

/// Why an output cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The output's first axis is not the batch.
    #[error("output `{name}` has shape {shape:?}, expected a first (batch) axis of {batch}")]
    Batch {
        /// Output name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The batch size run.
        batch: usize,
    },
    /// An item has the wrong number of values.
    #[error("output `{name}` gives {got} values per item, the contract says {want}")]
    Dim {
        /// Output name.
        name: String,
        /// Values per item.
        got: usize,
        /// What the contract declares.
        want: usize,
    },
}

/// Splits a `[batch, …]` output into `batch` flat vectors of `want` values each.
pub fn split_batch(
    name: &str,
    out: &ArrayD<f32>,
    batch: usize,
    want: usize,
) -> Result<Vec<Vec<f32>>, OutputError> {
    let shape = out.shape().to_vec();
    if shape.first() != Some(&batch) {
        return Err(OutputError::Batch {
            name: name.into(),
            shape,
            batch,
        });
    }
    let per = shape[1..].iter().product::<usize>();
    if per != want {
        return Err(OutputError::Dim {
            name: name.into(),
            got: per,
            want,
        });
    }
    let flat: Vec<f32> = out.iter().copied().collect();
    Ok(flat.chunks(per.max(1)).map(<[f32]>::to_vec).collect())
}

/// Parses `affect.output.affwild2-map`: for each model class, its index in the
/// Aff-Wild2 order ([`crate::EXPRESSIONS`]); `None` if malformed or of the wrong length.
pub fn parse_affwild2_map(value: &str, classes: usize) -> Option<Vec<usize>> {
    let v: Vec<usize> = value
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let mut seen = [false; 8];
    for &i in &v {
        if i >= 8 || seen[i] {
            return None;
        }
        seen[i] = true;
    }
    (v.len() == classes).then_some(v)
}

/// Reorders model class probabilities into the 8 Aff-Wild2 classes; classes the model
/// does not have (e.g. `Other`) get probability 0.
pub fn affwild2_map(probs: &[f32], map: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0; 8];
    for (p, &i) in probs.iter().zip(map) {
        out[i] = *p;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_map() {
        let a = ArrayD::from_shape_vec(vec![2, 1, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(
            split_batch("e", &a, 2, 3).unwrap(),
            [vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]
        );
        assert!(split_batch("e", &a, 1, 3).is_err());
        assert!(split_batch("e", &a, 2, 4).is_err());
        let m = parse_affwild2_map("1,2,3,4,5,6,0", 7).unwrap();
        let p = affwild2_map(&[0.1, 0.0, 0.0, 0.7, 0.0, 0.0, 0.2], &m);
        assert_eq!(p, [0.2, 0.1, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0]);
        assert!(parse_affwild2_map("1,1", 2).is_none());
        assert!(parse_affwild2_map("1,2", 3).is_none());
    }
}

// SPDX-License-Identifier: MPL-2.0
//! Framing of interleaved audio: any number of samples in, whole frames out.

/// Accumulates interleaved samples and hands out whole frames of `frame_len` samples per
/// channel (`frame_len * channels` values each), in order. Nothing is lost: what does not
/// fill a frame yet stays pending until more arrives or [`Framer::take_partial`] is called.
#[derive(Debug, Clone)]
pub struct Framer {
    channels: usize,
    frame_len: usize,
    pending: Vec<f32>,
}

impl Framer {
    /// A framer for `channels` interleaved channels (at least 1) and frames of `frame_len`
    /// samples per channel (at least 1).
    pub fn new(channels: usize, frame_len: usize) -> Self {
        Framer {
            channels: channels.max(1),
            frame_len: frame_len.max(1),
            pending: Vec::new(),
        }
    }

    /// Samples per channel in a frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Interleaved channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Samples per channel waiting for a frame to fill.
    pub fn pending_samples(&self) -> usize {
        self.pending.len() / self.channels
    }

    /// Adds interleaved samples (a trailing incomplete sample group is kept too) and calls
    /// `f` with every frame that became complete.
    pub fn push(&mut self, input: &[f32], mut f: impl FnMut(&[f32])) {
        let n = self.frame_len * self.channels;
        let mut input = input;
        if !self.pending.is_empty() {
            let need = n - self.pending.len();
            let take = need.min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < n {
                return;
            }
            f(&self.pending);
            self.pending.clear();
        }
        let mut chunks = input.chunks_exact(n);
        for c in &mut chunks {
            f(c);
        }
        self.pending.extend_from_slice(chunks.remainder());
    }

    /// The pending samples (less than one frame), zero-padded to a whole frame, and how many
    /// samples per channel were real; `None` when nothing is pending.
    pub fn take_partial(&mut self) -> Option<(Vec<f32>, usize)> {
        if self.pending.is_empty() {
            return None;
        }
        let real = self.pending.len().div_ceil(self.channels);
        let mut frame = std::mem::take(&mut self.pending);
        frame.resize(self.frame_len * self.channels, 0.0);
        Some((frame, real))
    }

    /// Drops what is pending.
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

/// Mean of the channels of an interleaved buffer (mono downmix).
pub fn downmix(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    let ch = channels.max(1);
    if ch == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / ch as f32;
    out.extend(
        interleaved
            .chunks_exact(ch)
            .map(|s| s.iter().sum::<f32>() * scale),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_chunking_gives_the_same_frames() {
        let data: Vec<f32> = (0..2 * 1000).map(|i| i as f32).collect();
        let reference: Vec<Vec<f32>> = data.chunks_exact(2 * 48).map(|c| c.to_vec()).collect();
        for chunk in [1, 7, 96, 100, 4096] {
            let mut fr = Framer::new(2, 48);
            let mut got = Vec::new();
            for c in data.chunks(chunk) {
                fr.push(c, |f| got.push(f.to_vec()));
            }
            assert_eq!(got, reference, "chunk {chunk}");
            assert_eq!(fr.pending_samples(), 1000 % 48);
            let (last, real) = fr.take_partial().unwrap();
            assert_eq!(real, 1000 % 48);
            assert_eq!(last.len(), 96);
            assert_eq!(&last[..2 * real], &data[2 * 48 * 20..]);
            assert!(last[2 * real..].iter().all(|&v| v == 0.0));
            assert!(fr.take_partial().is_none());
        }
    }

    #[test]
    fn downmix_averages() {
        let mut out = Vec::new();
        downmix(&[1.0, 3.0, -2.0, 2.0], 2, &mut out);
        assert_eq!(out, vec![2.0, 0.0]);
    }
}

//! rfpga-data: the CIFAR-10 binary release (read strictly), training augmentation and batching
//! on a background thread. No libtorch: batches are plain `Vec<f32>` in NHWC order, which the
//! training crate views as channels-last NCHW without a copy.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

pub const HEIGHT: usize = 32;
pub const WIDTH: usize = 32;
pub const CHANNELS: usize = 3;
pub const IMAGE_BYTES: usize = CHANNELS * HEIGHT * WIDTH;
/// One record: a label byte and 3,072 pixel bytes (1,024 R, 1,024 G, 1,024 B, row-major).
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
pub const NUM_CLASSES: usize = 10;
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILES: [&str; 1] = ["test_batch.bin"];
pub const CLASS_NAMES: [&str; NUM_CLASSES] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Per-channel normalization (the official CIFAR-10 training-set statistics; this copy's
/// differ by < 0.002, see shared/data/cifar10/README.md).
pub const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Where `make setup` unpacks the dataset, relative to the repository root.
pub const DEFAULT_DATA_DIR: &str = "data/cifar-10-batches-bin";

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read CIFAR-10 file: {source} (run `make setup-data` in the rfpga checkout, or `scripts/setup-cifar10.sh --archive cifar-10-binary.tar.gz` with the official archive; or point --data-dir or RFPGA_DATA at the folder)")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: size {size} bytes is not a whole number of {RECORD_BYTES}-byte records (truncated or not CIFAR-10 binary)")]
    BadSize { path: PathBuf, size: u64 },
    #[error("{path}: record {record} has label byte {label}, expected 0..=9")]
    BadLabel { path: PathBuf, record: usize, label: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Split::Train => &TRAIN_FILES,
            Split::Test => &TEST_FILES,
        }
    }
}

/// Images as stored (u8, CHW per image) with their labels.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Reads a split from the official binary layout in `dir`, strictly.
    /// A relative `dir` missing here is looked up in the rfpga checkout too
    /// ([`rfpga_core::io::in_checkout`]).
    pub fn load(dir: &Path, split: Split) -> Result<Self, DataError> {
        let dir = &rfpga_core::io::in_checkout(dir);
        let mut ds = Dataset::default();
        for name in split.files() {
            ds.append_file(&dir.join(name))?;
        }
        Ok(ds)
    }

    /// Appends one `*.bin` file.
    pub fn append_file(&mut self, path: &Path) -> Result<(), DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::Read { path: path.into(), source: e })?;
        if bytes.is_empty() || bytes.len() % RECORD_BYTES != 0 {
            return Err(DataError::BadSize { path: path.into(), size: bytes.len() as u64 });
        }
        let n = bytes.len() / RECORD_BYTES;
        self.images.reserve(n * IMAGE_BYTES);
        self.labels.reserve(n);
        for (record, r) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            if r[0] as usize >= NUM_CLASSES {
                return Err(DataError::BadLabel { path: path.into(), record, label: r[0] });
            }
            self.labels.push(r[0]);
            self.images.extend_from_slice(&r[1..]);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` images (all when `n` is larger).
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.images.truncate(n * IMAGE_BYTES);
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }
}

/// A batch ready for the network: normalized f32 pixels in NHWC order, labels as i64.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Training augmentation of He et al.: zero-pad by `pad` pixels, take a random 32×32 crop, flip
/// horizontally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    pub pad: usize,
    pub flip: Flip,
}

/// How images are flipped horizontally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    Off,
    /// With probability 1/2, independently in every epoch (He et al.).
    Random,
    /// Derandomized (airbench): each image is flipped in every other epoch, starting flipped or
    /// not at random (a function of `seed` and the image), so every two epochs see both views.
    Alternate { seed: u64, epoch: usize },
}

impl Augment {
    pub const STANDARD: Augment = Augment { pad: 4, flip: Flip::Random };
    pub const NONE: Augment = Augment { pad: 0, flip: Flip::Off };
}

/// The normalization as computed, in f32: a pixel byte v becomes `v as f32 * scale[c] +
/// offset[c]` (two roundings, no fused multiply-add) — what a board driver must repeat bit for
/// bit to feed the core the simulator's inputs.
pub fn normalization() -> ([f32; 3], [f32; 3]) {
    (std::array::from_fn(|c| 1.0 / (255.0 * STD[c])), std::array::from_fn(|c| -MEAN[c] / STD[c]))
}

/// Builds one batch from the images at `indices`. Padding is zero in the normalized domain's
/// source, i.e. black pixels, as in torchvision's `RandomCrop(32, padding=4)`.
pub fn make_batch(ds: &Dataset, indices: &[u32], aug: Augment, rng: &mut impl Rng) -> Batch {
    let mut images = vec![0f32; indices.len() * IMAGE_BYTES];
    let mut labels = Vec::with_capacity(indices.len());
    let (scale, offset) = normalization();
    let p = aug.pad as isize;
    for (b, &i) in indices.iter().enumerate() {
        let img = ds.image(i as usize);
        let (dy, dx) = if p > 0 { (rng.random_range(-p as i64..=p as i64) as isize, rng.random_range(-p as i64..=p as i64) as isize) } else { (0, 0) };
        // The coin is drawn in every mode with flips, so the crops are the same in all of them.
        let flip = match aug.flip {
            Flip::Off => false,
            Flip::Random => rng.random::<bool>(),
            Flip::Alternate { seed, epoch } => {
                let _ = rng.random::<bool>();
                (mix_seed(&[seed, i as u64, 3]) & 1 == 1) != (epoch % 2 == 1)
            }
        };
        let out = &mut images[b * IMAGE_BYTES..(b + 1) * IMAGE_BYTES];
        for y in 0..HEIGHT {
            let sy = y as isize + dy;
            for x in 0..WIDTH {
                let xx = if flip { WIDTH - 1 - x } else { x };
                let sx = xx as isize + dx;
                let o = (y * WIDTH + x) * CHANNELS;
                let inside = (0..HEIGHT as isize).contains(&sy) && (0..WIDTH as isize).contains(&sx);
                for c in 0..CHANNELS {
                    let v = if inside { img[c * HEIGHT * WIDTH + sy as usize * WIDTH + sx as usize] } else { 0 };
                    out[o + c] = v as f32 * scale[c] + offset[c];
                }
            }
        }
        labels.push(ds.labels[i as usize] as i64);
    }
    Batch { images, labels }
}

/// The images at `indices`, normalized and not augmented: what evaluation (tch and the
/// fixed-point simulator alike) feeds the network.
pub fn eval_batch(ds: &Dataset, indices: &[u32]) -> Batch {
    make_batch(ds, indices, Augment::NONE, &mut ChaCha8Rng::seed_from_u64(0))
}

/// Mixes seeds so that every (seed, epoch, batch) gets an independent stream (splitmix64).
pub fn mix_seed(parts: &[u64]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &p in parts {
        h ^= p.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(h << 6).wrapping_add(h >> 2);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// The order in which epoch `epoch` visits the training set: a function of (seed, epoch) only,
/// so a resumed run sees exactly the batches an uninterrupted one would.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix_seed(&[seed, epoch as u64, 1])));
    order
}

/// Batches of one pass over `ds`, made on a background thread a few batches ahead of the
/// consumer, so augmentation stays off the training loop's critical path. Deterministic:
/// batch `b` uses its own RNG stream derived from (seed, epoch, b).
pub struct BatchStream {
    rx: Receiver<Batch>,
    len: usize,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BatchStream {
    /// Training batches for `epoch`: shuffled, augmented; a last batch of one image is dropped
    /// (BatchNorm needs two).
    pub fn train(ds: Arc<Dataset>, batch_size: usize, aug: Augment, seed: u64, epoch: usize) -> Self {
        let aug = match aug.flip {
            Flip::Alternate { .. } => Augment { flip: Flip::Alternate { seed, epoch }, ..aug },
            _ => aug,
        };
        let order = epoch_order(ds.len(), seed, epoch);
        let mut chunks: Vec<Vec<u32>> = order.chunks(batch_size).map(<[u32]>::to_vec).collect();
        if chunks.last().is_some_and(|c| c.len() < 2) {
            chunks.pop();
        }
        Self::spawn(ds, chunks, aug, move |b| mix_seed(&[seed, epoch as u64, 2, b as u64]))
    }

    /// Evaluation batches: in order, no augmentation.
    pub fn eval(ds: Arc<Dataset>, batch_size: usize) -> Self {
        let chunks = (0..ds.len() as u32).collect::<Vec<_>>().chunks(batch_size).map(<[u32]>::to_vec).collect();
        Self::spawn(ds, chunks, Augment::NONE, |_| 0)
    }

    fn spawn(ds: Arc<Dataset>, chunks: Vec<Vec<u32>>, aug: Augment, seed_of: impl Fn(usize) -> u64 + Send + 'static) -> Self {
        let len = chunks.len();
        let (tx, rx) = sync_channel(4);
        let handle = std::thread::spawn(move || {
            for (b, idx) in chunks.iter().enumerate() {
                let mut rng = ChaCha8Rng::seed_from_u64(seed_of(b));
                if tx.send(make_batch(&ds, idx, aug, &mut rng)).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        BatchStream { rx, len, handle: Some(handle) }
    }

    /// Number of batches in the pass.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Iterator for BatchStream {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Unblock the producer, then reap it.
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(path: &Path, labels: &[u8]) {
        let mut bytes = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            bytes.push(l);
            bytes.extend((0..IMAGE_BYTES).map(|j| ((i * 7 + j) % 256) as u8));
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn reads_records_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write_records(&dir.path().join("test_batch.bin"), &[3, 0, 9]);
        let ds = Dataset::load(dir.path(), Split::Test).unwrap();
        assert_eq!(ds.labels, vec![3, 0, 9]);
        assert_eq!(ds.image(1)[0], 7);
        assert_eq!(ds.image(2)[IMAGE_BYTES - 1], ((14 + IMAGE_BYTES - 1) % 256) as u8);
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = Dataset::load(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(e.contains("data_batch_1.bin") && e.contains("make setup"), "{e}");
    }

    #[test]
    fn truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test_batch.bin");
        write_records(&path, &[1, 2]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let e = Dataset::load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin") && e.contains("6141") && e.contains("3073-byte records"), "{e}");
    }

    #[test]
    fn bad_label_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_records(&dir.path().join("test_batch.bin"), &[1, 2, 10]);
        let e = Dataset::load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin") && e.contains("record 2") && e.contains("label byte 10"), "{e}");
    }

    #[test]
    fn unaugmented_batch_is_normalized_nhwc() {
        let mut ds = Dataset::default();
        ds.labels.push(4);
        ds.images = (0..IMAGE_BYTES).map(|j| (j % 251) as u8).collect();
        let b = make_batch(&ds, &[0], Augment::NONE, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(b.labels, vec![4]);
        for (y, x, c) in [(0, 0, 0), (5, 17, 1), (31, 31, 2)] {
            let raw = ds.images[c * 1024 + y * 32 + x] as f32;
            let want = (raw / 255.0 - MEAN[c]) / STD[c];
            assert!((b.images[(y * 32 + x) * 3 + c] - want).abs() < 1e-5);
        }
    }

    #[test]
    fn alternating_flips_show_each_image_both_ways_every_two_epochs() {
        let mut ds = Dataset::default();
        for k in 0..40 {
            ds.labels.push((k % 10) as u8);
            ds.images.extend((0..IMAGE_BYTES).map(|j| ((j * 31 + k * 17) % 251) as u8));
        }
        let idx: Vec<u32> = (0..40).collect();
        let pass = |flip: Flip| make_batch(&ds, &idx, Augment { pad: 4, flip }, &mut ChaCha8Rng::seed_from_u64(9));
        let random = pass(Flip::Random);
        let (e0, e1, e2) = (pass(Flip::Alternate { seed: 1, epoch: 0 }), pass(Flip::Alternate { seed: 1, epoch: 1 }), pass(Flip::Alternate { seed: 1, epoch: 2 }));
        let img = |b: &Batch, k: usize| b.images[k * IMAGE_BYTES..(k + 1) * IMAGE_BYTES].to_vec();
        let mirror = |v: &[f32]| -> Vec<f32> {
            let mut m = v.to_vec();
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    for c in 0..CHANNELS {
                        m[(y * WIDTH + x) * CHANNELS + c] = v[(y * WIDTH + WIDTH - 1 - x) * CHANNELS + c];
                    }
                }
            }
            m
        };
        let mut same_as_random = 0;
        for k in 0..40 {
            // Same crop stream: the alternate view equals the random one or its mirror.
            let (a, r) = (img(&e0, k), img(&random, k));
            assert!(a == r || a == mirror(&r), "image {k}: not the random pass's crop");
            // Epochs 0 and 1 are mirror images; epoch 2 repeats epoch 0's orientation.
            assert_eq!(img(&e1, k), mirror(&a), "image {k}");
            assert_eq!(img(&e2, k), a, "image {k}");
            same_as_random += usize::from(a == r);
        }
        assert!((5..35).contains(&same_as_random), "a random start per image: {same_as_random} of 40 as the random pass");
    }

    #[test]
    fn augmentation_is_a_padded_crop_or_its_mirror() {
        let mut ds = Dataset::default();
        ds.labels.push(0);
        ds.images = (0..IMAGE_BYTES).map(|j| (j % 200 + 1) as u8).collect();
        let plain = make_batch(&ds, &[0], Augment::NONE, &mut ChaCha8Rng::seed_from_u64(0));
        let zero: [f32; 3] = std::array::from_fn(|c| -MEAN[c] / STD[c]);
        let at = |img: &[f32], y: isize, x: isize, c: usize| {
            if (0..32).contains(&y) && (0..32).contains(&x) { img[(y as usize * 32 + x as usize) * 3 + c] } else { zero[c] }
        };
        for s in 0..20 {
            let b = make_batch(&ds, &[0], Augment::STANDARD, &mut ChaCha8Rng::seed_from_u64(s));
            let matches = |dy: isize, dx: isize, flip: bool| {
                (0..32).all(|y| {
                    (0..32).all(|x| {
                        let xx = if flip { 31 - x } else { x };
                        (0..3).all(|c| b.images[(y as usize * 32 + x as usize) * 3 + c] == at(&plain.images, y + dy, xx + dx, c))
                    })
                })
            };
            let found = (-4..=4).any(|dy| (-4..=4).any(|dx| matches(dy, dx, false) || matches(dy, dx, true)));
            assert!(found, "seed {s}: not a shifted (and possibly mirrored) copy");
        }
    }

    #[test]
    fn batches_are_deterministic_and_cover_the_epoch() {
        let mut ds = Dataset::default();
        for i in 0..10u8 {
            ds.labels.push(i);
            ds.images.extend(std::iter::repeat_n(i * 20, IMAGE_BYTES));
        }
        let ds = Arc::new(ds);
        let a: Vec<Batch> = BatchStream::train(ds.clone(), 4, Augment::STANDARD, 7, 3).collect();
        let b: Vec<Batch> = BatchStream::train(ds.clone(), 4, Augment::STANDARD, 7, 3).collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Batch::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut seen: Vec<i64> = a.iter().flat_map(|b| b.labels.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let c: Vec<Batch> = BatchStream::train(ds.clone(), 4, Augment::STANDARD, 7, 4).collect();
        assert_ne!(a, c, "another epoch, another order");
        // 9 images in batches of 4: the final single image is dropped.
        let mut nine = (*ds).clone();
        nine.truncate(9);
        assert_eq!(BatchStream::train(Arc::new(nine), 4, Augment::NONE, 0, 0).map(|b| b.len()).sum::<usize>(), 8);
    }
}

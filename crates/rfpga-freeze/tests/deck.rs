//! The deck's shortened students (trained with option-A short skips, committed under
//! sweeps/deck20): folded at freeze time, the skipless network computes every block output and
//! every logit of the unfolded one, on the CIFAR-10 test images (`make setup` unpacks them).

use rfpga_data::{make_batch, Augment, Dataset, Flip, Split};
use rfpga_freeze::{freeze, Frozen, Request};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compares the folded and unfolded networks of `run` on the first `n` test images, on two
/// threads; returns the number of values compared.
fn compare(run: &str, n: usize) -> usize {
    let run = root().join(run);
    let (f, u): (Frozen, Frozen) = (freeze(&run, &Request::default()).unwrap(), freeze(&run, &Request { keep_adds: true, ..Default::default() }).unwrap());
    assert_eq!(f.model.folded.len(), 18, "every short skip folded");
    assert!(f.model.layers.iter().all(|l| l.kind() != "add" && l.kind() != "pad_shortcut"));
    let (fs, us) = (f.simulator().unwrap(), u.simulator().unwrap());
    // Each folded layer's port and the unfolded port it must equal (a folded convolution's
    // output is its add's).
    let pairs: Vec<(usize, usize)> = f.model.layers.iter().map(|l| (fs.output_port(l.name()).unwrap(), us.output_port(f.model.unfolded_twin(l.name())).unwrap())).collect();
    let data = root().join("data/cifar-10-batches-bin");
    assert!(data.join("test_batch.bin").exists(), "{} has no CIFAR-10: run `make setup` first", data.display());
    let mut ds = Dataset::load(&data, Split::Test).unwrap();
    ds.truncate(n);
    let idx: Vec<u32> = (0..ds.len() as u32).collect();
    let batch = make_batch(&ds, &idx, Augment { pad: 0, flip: Flip::Off }, &mut rand::rng());
    let per = batch.images.len() / ds.len();
    let chunks: Vec<&[f32]> = batch.images.chunks(per).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = chunks
            .chunks(chunks.len().div_ceil(2))
            .map(|part| {
                let (fs, us, pairs) = (&fs, &us, &pairs);
                s.spawn(move || {
                    let (mut a, mut b) = (fs.new_state(), us.new_state());
                    let mut compared = 0;
                    for img in part {
                        fs.input_raw(img, &mut a.ports[0]);
                        us.input_raw(img, &mut b.ports[0]);
                        fs.run(&mut a);
                        us.run(&mut b);
                        for &(pf, pu) in pairs {
                            assert!(a.ports[pf] == b.ports[pu], "port {pf} differs from {pu}");
                            compared += a.ports[pf].len();
                        }
                    }
                    compared
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

#[test]
fn folded_deck_students_equal_their_unfolded_form_on_the_test_set() {
    // Both seeds on all 10,000 test images.
    let a = compare("sweeps/deck20/runs/r20A-s0-fx8.3-rnd-sat-shorten-mse/train", 10_000);
    let b = compare("sweeps/deck20/runs/r20A-s1-fx8.3-rnd-sat-shorten-mse/train", 10_000);
    assert!(a > 10_000 * 100_000 && b > 10_000 * 100_000, "{a} {b}");
}

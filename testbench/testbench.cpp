// rfpga C-simulation testbench. Two modes:
//
// Vectors: rfpga_csim VECTORS_DIR [MAX_IMAGES] [--batch N] [--truncate WORDS]
//   Reads the vectors `rfpga sim --export-vectors DIR` writes (inputs.txt: one image per line,
//   raw input integers in HWC order; logits.txt: the simulator's raw logits), sends the images
//   as AXI-stream words in transfers of N images (TLAST on the last word of each; default: one
//   transfer), runs rfpga_top, and checks every logit bit for bit and the framing: one word per
//   logit, TLAST on exactly the last logit of each transfer. --truncate WORDS sends the first
//   transfer's last image cut short, WORDS words with TLAST on the last (an aborted DMA
//   transfer): its logits must all be the partial-image marker, with TLAST, and every later
//   image must still be exact (the core realigned). Prints "N passed, M failed"; exit 1 on a
//   mismatch.
//
// Raw: rfpga_csim --raw IN_1:OUT_1 [IN_2:OUT_2 ...]
//   The bytes an AXI DMA would move: each IN file is one transfer of input words (little
//   endian, the input word's bytes each, TLAST on its last word); the core's output words are
//   split at TLAST and written to the OUT files in order, the same way. Exit 1 when the output
//   does not end exactly one transfer per input file.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rfpga_top.h"

static std::vector<std::vector<long long> > read_lines(const std::string &path) {
    std::ifstream f(path.c_str());
    if (!f) {
        std::fprintf(stderr, "%s: cannot open\n", path.c_str());
        std::exit(2);
    }
    std::vector<std::vector<long long> > rows;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream s(line);
        std::vector<long long> row;
        long long v;
        while (s >> v) row.push_back(v);
        rows.push_back(row);
    }
    return rows;
}

// The low W bits of a raw value, as an unsigned number (how a W-bit register holds it).
static unsigned long long low_bits(long long raw, int width) {
    return width >= 64 ? (unsigned long long)raw : (unsigned long long)raw & ((1ULL << width) - 1);
}

static const int IN_WORD = input_word_t().data.length(), OUT_WORD = output_word_t().data.length();

// Runs the core on every word in `in`, `images` images (one call per image sequentially, one
// call for all of them threaded, as the free-running core handles them back to back).
static void run_core(hls::stream<input_word_t> &in, hls::stream<output_word_t> &out, size_t images) {
#ifdef RFPGA_THREADED_CSIM
    rfpga_csim::images() = (int)images;
    rfpga_top(in, out);
#else
    for (size_t i = 0; i < images; i++) rfpga_top(in, out);
#endif
}

static int raw_mode(int argc, char **argv) {
    hls::stream<input_word_t> in("in");
    hls::stream<output_word_t> out("out");
    std::vector<std::string> outs;
    size_t images = 0;
    const int in_bytes = IN_WORD / 8, out_bytes = OUT_WORD / 8;
    for (int a = 2; a < argc; a++) {
        std::string arg = argv[a];
        size_t colon = arg.rfind(':');
        if (colon == std::string::npos) {
            std::fprintf(stderr, "--raw: expected IN:OUT, found %s\n", arg.c_str());
            return 2;
        }
        std::string path = arg.substr(0, colon);
        outs.push_back(arg.substr(colon + 1));
        std::ifstream f(path.c_str(), std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (!f.good() && !f.eof()) {
            std::fprintf(stderr, "%s: cannot read\n", path.c_str());
            return 2;
        }
        if (bytes.empty() || bytes.size() % in_bytes != 0) {
            std::fprintf(stderr, "%s: %zu bytes, expected a positive multiple of the %d-byte input word\n", path.c_str(), bytes.size(), in_bytes);
            return 2;
        }
        size_t words = bytes.size() / in_bytes;
        for (size_t w = 0; w < words; w++) {
            input_word_t word;
            word.data = 0;
            for (int b = 0; b < in_bytes; b++) word.data.range(8 * b + 7, 8 * b) = (unsigned char)bytes[w * in_bytes + b];
            word.keep = -1;
            word.strb = -1;
            word.last = w == words - 1;
            in.write(word);
        }
        // A transfer that is not a whole number of images ends on a partial one.
        images += (words + RFPGA_INPUT_PIXELS - 1) / RFPGA_INPUT_PIXELS;
    }
    run_core(in, out, images);
    size_t transfer = 0;
    std::vector<char> buf;
    while (!out.empty()) {
        output_word_t w = out.read();
        for (int b = 0; b < out_bytes; b++) buf.push_back((char)w.data.range(8 * b + 7, 8 * b).to_uint());
        if (w.last) {
            if (transfer == outs.size()) break;
            std::ofstream f(outs[transfer].c_str(), std::ios::binary);
            f.write(buf.data(), buf.size());
            if (!f) {
                std::fprintf(stderr, "%s: cannot write\n", outs[transfer].c_str());
                return 2;
            }
            std::printf("transfer %zu: %zu output words\n", transfer, buf.size() / out_bytes);
            buf.clear();
            transfer++;
        }
    }
    if (transfer != outs.size() || !buf.empty() || !out.empty()) {
        std::printf("the output ended %zu transfers (TLAST), %zu words after the last; expected %zu transfers\n", transfer, buf.size() / out_bytes, outs.size());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && std::strcmp(argv[1], "--raw") == 0) return raw_mode(argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s VECTORS_DIR [MAX_IMAGES] [--batch N] [--truncate WORDS]\n       %s --raw IN:OUT [IN:OUT ...]\n", argv[0], argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    size_t limit = (size_t)-1, batch = 0, cut = 0;
    for (int a = 2; a < argc; a++) {
        std::string arg = argv[a];
        if ((arg == "--batch" || arg == "--truncate") && a + 1 < argc) {
            (arg == "--batch" ? batch : cut) = std::strtoul(argv[++a], 0, 10);
        } else if (!arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos) {
            limit = std::strtoul(arg.c_str(), 0, 10);
        } else {
            std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
            return 2;
        }
    }
    std::vector<std::vector<long long> > inputs = read_lines(dir + "/inputs.txt");
    std::vector<std::vector<long long> > logits = read_lines(dir + "/logits.txt");
    size_t n = inputs.size() < logits.size() ? inputs.size() : logits.size();
    if (limit < n) n = limit;
    if (batch == 0 || batch > n) batch = n;
    if (batch == 0) batch = 1;  // no vectors: nothing to send
    if (cut >= (size_t)RFPGA_INPUT_PIXELS) {
        std::fprintf(stderr, "--truncate %zu: expected fewer words than an image's %d\n", cut, RFPGA_INPUT_PIXELS);
        return 2;
    }
    const int channels = RFPGA_INPUT_CHANNELS, classes = RFPGA_CLASSES, iw = rfpga_input_t::width;
    const int ow = rfpga_output_t::width;
    for (size_t i = 0; i < n; i++) {
        if ((int)inputs[i].size() != RFPGA_INPUT_PIXELS * channels || (int)logits[i].size() != classes) {
            std::fprintf(stderr, "image %zu: %zu input values (expected %d) or %zu logits (expected %d)\n", i, inputs[i].size(),
                         RFPGA_INPUT_PIXELS * channels, logits[i].size(), classes);
            return 2;
        }
    }
    // Image i ends a transfer when it is the last of its batch; the cut image is the first
    // batch's last.
    const auto ends_transfer = [&](size_t i) { return (i + 1) % batch == 0 || i + 1 == n; };
    const size_t cut_image = cut > 0 ? batch - 1 : (size_t)-1;
    size_t passed = 0, failed = 0, framing = 0, flagged = 0;
    hls::stream<input_word_t> in("in");
    hls::stream<output_word_t> out("out");
    // One AXI-stream word per pixel, channel c in bits [c*iw, c*iw + iw).
    const auto send = [&](size_t i) {
        const int words = i == cut_image ? (int)cut : RFPGA_INPUT_PIXELS;
        for (int p = 0; p < words; p++) {
            input_word_t w;
            w.data = 0;
            for (int c = 0; c < channels; c++) w.data.range(c * iw + iw - 1, c * iw) = low_bits(inputs[i][p * channels + c], iw);
            w.keep = -1;
            w.strb = -1;
            w.last = p == words - 1 && (ends_transfer(i) || i == cut_image);
            in.write(w);
        }
    };
    const auto check = [&](size_t i) {
        bool ok = true;
        for (int o = 0; o < classes; o++) {
            if (out.empty()) {
                std::printf("image %zu: %d output words, expected %d\n", i, o, classes);
                ok = false;
                framing++;
                break;
            }
            output_word_t w = out.read();
            const bool want_last = o == classes - 1 && ends_transfer(i);
            if ((bool)w.last != want_last) {
                if (framing < 5) std::printf("image %zu word %d: TLAST %d, expected %d\n", i, o, (int)w.last, (int)want_last);
                framing++;
                ok = false;
            }
            if (i == cut_image) {
                // The marker: the top bit alone.
                output_word_t marker;
                marker.data = 0;
                marker.data[OUT_WORD - 1] = 1;
                if (w.data != marker.data) {
                    if (failed < 5) std::printf("image %zu (cut short) logit %d: 0x%s, expected the marker\n", i, o, w.data.to_string(16).c_str());
                    ok = false;
                }
                continue;
            }
            // The word is the logit's raw bits sign-extended (or zero-extended).
            unsigned long long got = w.data.range(ow - 1, 0).to_uint64();
            unsigned long long want = low_bits(logits[i][o], ow);
            bool extended = true;
            for (int bit = ow; bit < OUT_WORD; bit++) extended &= (int)w.data[bit] == (RFPGA_OUTPUT_SIGNED ? (int)w.data[ow - 1] : 0);
            if (got != want || !extended) {
                if (failed < 5)
                    std::printf("image %zu logit %d: C-sim bits 0x%llx, simulator bits 0x%llx (raw %lld)%s\n", i, o, got, want,
                                logits[i][o], extended ? "" : ", upper word bits not the extension");
                ok = false;
            }
        }
        if (ok && i == cut_image) flagged++;
        ok ? passed++ : failed++;
    };
#ifdef RFPGA_THREADED_CSIM
    // As the free-running hardware does: every image's words in, one run of the dataflow
    // region in which each process handles the images back to back, then every logit out.
    for (size_t i = 0; i < n; i++) send(i);
    run_core(in, out, n);
    for (size_t i = 0; i < n; i++) check(i);
#else
    for (size_t i = 0; i < n; i++) {
        send(i);
        run_core(in, out, 1);
        check(i);
    }
#endif
    if (!out.empty()) {
        std::printf("more output words than %zu images × %d\n", n, classes);
        framing++;
        failed += failed == 0;
    }
    if (framing > 0) std::printf("%zu AXI-stream framing errors (TLAST or word count)\n", framing);
    if (cut_image != (size_t)-1) std::printf("%zu partial image%s marked (cut to %zu words), later images checked\n", flagged, flagged == 1 ? "" : "s", cut);
    size_t transfers = (n + batch - 1) / batch;
    std::printf("%zu transfer%s of up to %zu images\n", transfers, transfers == 1 ? "" : "s", batch);
    std::printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

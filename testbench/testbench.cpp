// rfpga C-simulation testbench: reads test vectors written by `rfpga sim --export-vectors DIR`
// (inputs.txt: one image per line, raw input integers in HWC order; logits.txt: the simulator's
// raw logits), sends each image as AXI-stream words, runs rfpga_top, and compares every logit bit for bit
// and the output framing: one word per logit, TLAST on exactly the last word of each image.
// Usage: rfpga_csim VECTORS_DIR [MAX_IMAGES]. Prints "N passed, M failed"; exit 1 on a mismatch.
#include <cstdio>
#include <cstdlib>
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

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s VECTORS_DIR [MAX_IMAGES]\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    std::vector<std::vector<long long> > inputs = read_lines(dir + "/inputs.txt");
    std::vector<std::vector<long long> > logits = read_lines(dir + "/logits.txt");
    size_t n = inputs.size() < logits.size() ? inputs.size() : logits.size();
    if (argc > 2) {
        size_t limit = std::strtoul(argv[2], 0, 10);
        if (limit < n) n = limit;
    }
    const int channels = RFPGA_INPUT_CHANNELS, classes = RFPGA_CLASSES, iw = rfpga_input_t::width;
    const int ow = rfpga_output_t::width, word = output_word_t().data.length();
    size_t passed = 0, failed = 0, framing = 0;
    for (size_t i = 0; i < n; i++) {
        if ((int)inputs[i].size() != RFPGA_INPUT_PIXELS * channels || (int)logits[i].size() != classes) {
            std::fprintf(stderr, "image %zu: %zu input values (expected %d) or %zu logits (expected %d)\n", i, inputs[i].size(),
                         RFPGA_INPUT_PIXELS * channels, logits[i].size(), classes);
            return 2;
        }
    }
    // One AXI-stream word per pixel, channel c in bits [c*iw, c*iw + iw), TLAST on the last.
    hls::stream<input_word_t> in("in");
    hls::stream<output_word_t> out("out");
    const auto send = [&](size_t i) {
        for (int p = 0; p < RFPGA_INPUT_PIXELS; p++) {
            input_word_t w;
            w.data = 0;
            for (int c = 0; c < channels; c++) w.data.range(c * iw + iw - 1, c * iw) = low_bits(inputs[i][p * channels + c], iw);
            w.keep = -1;
            w.strb = -1;
            w.last = (p == RFPGA_INPUT_PIXELS - 1);
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
            // TLAST exactly on the image's last word, and the word is the logit's raw bits
            // sign-extended (or zero-extended) to the word.
            if ((int)w.last != (o == classes - 1)) {
                if (framing < 5) std::printf("image %zu word %d: TLAST %d, expected %d\n", i, o, (int)w.last, o == classes - 1);
                framing++;
                ok = false;
            }
            unsigned long long got = w.data.range(ow - 1, 0).to_uint64();
            unsigned long long want = low_bits(logits[i][o], ow);
            bool extended = true;
            for (int bit = ow; bit < word; bit++) extended &= (int)w.data[bit] == (RFPGA_OUTPUT_SIGNED ? (int)w.data[ow - 1] : 0);
            if (got != want || !extended) {
                if (failed < 5)
                    std::printf("image %zu logit %d: C-sim bits 0x%llx, simulator bits 0x%llx (raw %lld)%s\n", i, o, got, want,
                                logits[i][o], extended ? "" : ", upper word bits not the extension");
                ok = false;
            }
        }
        ok ? passed++ : failed++;
    };
#ifdef RFPGA_THREADED_CSIM
    // As the free-running hardware does: every image's words in, one run of the dataflow
    // region in which each process handles the images back to back, then every logit out.
    for (size_t i = 0; i < n; i++) send(i);
    rfpga_csim::images() = (int)n;
    rfpga_top(in, out);
    for (size_t i = 0; i < n; i++) check(i);
#else
    for (size_t i = 0; i < n; i++) {
        send(i);
        rfpga_top(in, out);
        check(i);
    }
#endif
    if (!out.empty()) {
        std::printf("more output words than %zu images × %d\n", n, classes);
        framing++;
        failed += failed == 0;
    }
    if (framing > 0) std::printf("%zu AXI-stream framing errors (TLAST or word count)\n", framing);
    std::printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

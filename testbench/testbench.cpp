// rfpga C-simulation testbench: reads test vectors written by `rfpga sim --export-vectors DIR`
// (inputs.txt: one image per line, raw input integers in HWC order; logits.txt: the simulator's
// raw logits), runs rfpga_top on each image and compares every logit bit for bit.
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
    const int channels = sizeof(((input_px_t *)0)->v) / sizeof(((input_px_t *)0)->v[0]);
    const int classes = sizeof(((output_px_t *)0)->v) / sizeof(((output_px_t *)0)->v[0]);
    typedef __typeof__(((input_px_t *)0)->v[0]) in_t;
    typedef __typeof__(((output_px_t *)0)->v[0]) out_t;
    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (inputs[i].size() % channels != 0 || (int)logits[i].size() != classes) {
            std::fprintf(stderr, "image %zu: %zu input values (not a multiple of %d) or %zu logits (expected %d)\n", i,
                         inputs[i].size(), channels, logits[i].size(), classes);
            return 2;
        }
        hls::stream<input_px_t> in("in");
        hls::stream<output_px_t> out("out");
        for (size_t p = 0; p < inputs[i].size() / channels; p++) {
            input_px_t px;
            for (int c = 0; c < channels; c++) px.v[c] = rfpga::from_raw<in_t>(inputs[i][p * channels + c]);
            in.write(px);
        }
        rfpga_top(in, out);
        output_px_t y = out.read();
        bool ok = true;
        for (int o = 0; o < classes; o++) {
            unsigned long long got = y.v[o].range(out_t::width - 1, 0).to_uint64();
            unsigned long long want = low_bits(logits[i][o], out_t::width);
            if (got != want) {
                if (failed < 5)
                    std::printf("image %zu logit %d: C-sim bits 0x%llx, simulator bits 0x%llx (raw %lld)\n", i, o, got, want,
                                logits[i][o]);
                ok = false;
            }
        }
        ok ? passed++ : failed++;
    }
    std::printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

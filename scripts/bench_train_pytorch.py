"""PyTorch eager side of `make bench-train`: the same ResNet-20 (option A, He et al.), the same
work per step as `rfpga bench-train` (forward + backward + Nesterov SGD with weight decay on
random CIFAR-sized data), channels-last (its fastest CPU format here). Prints one JSON line."""
import argparse, json, os, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        sc = x
        if self.stride != 1 or self.extra:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, depth):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, w in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(cin, w, 2 if (b == 0 and stage > 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--contiguous", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fmt = torch.contiguous_format if a.contiguous else torch.channels_last
    model = ResNet(a.depth).to(memory_format=fmt).train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(a.batch_size, 3, 32, 32).to(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch_size,))

    phases = [0.0, 0.0, 0.0]

    def step(timed):
        # Each phase timed on its own (loss.item() makes the forward finish first).
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        value = loss.item()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if timed:
            for k, d in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                phases[k] += d
        return value

    for _ in range(a.warmup):
        step(False)
    t = time.perf_counter()
    for _ in range(a.steps):
        step(True)
    secs = time.perf_counter() - t
    print(json.dumps({"impl": os.environ.get("RFPGA_BENCH_IMPL", "pytorch"), "model": f"resnet{a.depth}-A", "parameters": params, "batch": a.batch_size,
                      "threads": a.threads, "channels_last": not a.contiguous, "steps": a.steps,
                      "torch": torch.__version__, "images_per_s": round(a.steps * a.batch_size / secs, 1),
                      "forward_ms": round(1e3 * phases[0] / a.steps, 1), "backward_ms": round(1e3 * phases[1] / a.steps, 1),
                      "step_ms": round(1e3 * phases[2] / a.steps, 2)}))


if __name__ == "__main__":
    main()

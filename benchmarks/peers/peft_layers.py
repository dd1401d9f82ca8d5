#!/usr/bin/env python3
"""PEFT layer peers of the GPU microbenchmarks (PERFORMANCE.md, GPU targets table), run by ci/gpu-check.sh with
the GPU machine's own python3 in the same run as ai.lorakit.bench.gpu.LoraMicrobench.

One linear layer d x d (bias-free, bf16 base weight; PEFT keeps the adapter weights in fp32 by default when the
base is bf16), input x bf16 [N, d]. Per method, the layer's forward and forward + backward (dX and the adapter
gradients; the base weight is frozen) are timed with CUDA events after warm-up, median of the repeats, and
compared with the frozen GEMMs: x W^T (forward) and x W^T + dY W (forward + backward).

Methods: LoRA r, DoRA r, VeRA (r_vera), AdaLoRA (init_r = r), all on the one layer "proj".

    python3 benchmarks/peers/peft_layers.py --out peers_layers.json [--n 16384 --d 4096 --r 16 --vera-r 256]

Prints one line per method and writes one JSON object. A method that fails (a PEFT version without it, out of
memory) is recorded with its error; the others still run. Needs torch with CUDA and peft.
"""
import argparse
import json
import statistics
import sys
import time


def timed(torch, fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--d", type=int, default=4096)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--vera-r", type=int, default=256)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch
    import peft
    from torch import nn

    result = {"peer": "peft_layers", "torch": torch.__version__, "peft": peft.__version__,
              "shape": {"N": args.n, "d": args.d, "r": args.r, "vera_r": args.vera_r}, "rows": []}
    if not torch.cuda.is_available():
        result["error"] = "no CUDA device visible to torch"
        print(json.dumps(result))
        if args.out:
            json.dump(result, open(args.out, "w"), indent=1)
        return 1
    dev = torch.device("cuda")
    result["device"] = torch.cuda.get_device_name(0)
    torch.manual_seed(0)
    n, d = args.n, args.d
    x = torch.randn(n, d, device=dev, dtype=torch.bfloat16)
    dy = torch.randn(n, d, device=dev, dtype=torch.bfloat16)
    w = (torch.randn(d, d, device=dev, dtype=torch.bfloat16) * 0.02)

    base_fwd = timed(torch, lambda: torch.nn.functional.linear(x, w), args.warmup, args.reps)
    base_bwd = timed(torch, lambda: dy @ w, args.warmup, args.reps)
    result["rows"].append({"method": "gemm_frozen_fwd", "fwd_ms": base_fwd})
    result["rows"].append({"method": "gemm_frozen_bwd_dx", "ms": base_bwd})

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(d, d, bias=False, device=dev, dtype=torch.bfloat16)
            with torch.no_grad():
                self.proj.weight.copy_(w)

        def forward(self, inp):
            return self.proj(inp)

    def configs():
        yield "lora", lambda: peft.LoraConfig(r=args.r, lora_alpha=2 * args.r, target_modules=["proj"],
                                              init_lora_weights=False)
        yield "dora", lambda: peft.LoraConfig(r=args.r, lora_alpha=2 * args.r, target_modules=["proj"],
                                              use_dora=True, init_lora_weights=False)
        yield "vera", lambda: peft.VeraConfig(r=args.vera_r, target_modules=["proj"], init_weights=False)
        yield "adalora", lambda: peft.AdaLoraConfig(init_r=args.r, target_r=max(1, args.r // 2),
                                                    target_modules=["proj"], total_step=1000)

    for name, make in configs():
        row = {"method": name}
        try:
            model = peft.get_peft_model(Layer(), make())
            model.train()
            xin = x.detach().clone().requires_grad_(True)

            def fwd():
                with torch.no_grad():
                    model(x)

            def fwd_bwd():
                out = model(xin)
                out.backward(dy)

            row["fwd_ms"] = timed(torch, fwd, args.warmup, args.reps)
            row["fwd_bwd_ms"] = timed(torch, fwd_bwd, args.warmup, args.reps)
            row["fwd_ratio_vs_gemm"] = row["fwd_ms"] / base_fwd
            row["fwd_bwd_ratio_vs_gemms"] = row["fwd_bwd_ms"] / (base_fwd + base_bwd)
            row["adapter_dtype"] = str(next(p.dtype for n_, p in model.named_parameters() if p.requires_grad))
            if name == "adalora":
                # AdaLoRA's per-step extra work: the orthogonality regulariser over every (A, B) pair
                def orth():
                    reg = 0.0
                    for pn, p in model.named_parameters():
                        if "lora_A" in pn or "lora_B" in pn:
                            para = p if "lora_A" in pn else p.T
                            eye = torch.eye(para.shape[0], device=dev, dtype=para.dtype)
                            reg = reg + torch.norm(para @ para.T - eye, p="fro")
                    return reg
                row["orth_reg_ms"] = timed(torch, orth, args.warmup, args.reps)
            del model
            torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001 -- record and go on to the next method
            row["error"] = f"{type(e).__name__}: {e}"
        result["rows"].append(row)
        print(json.dumps(row), flush=True)

    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PEFT + transformers peer of the GPT-2 124M LoRA fine-tuning step (PERFORMANCE.md: lorakit >= 1.5 x this in
eager mode, >= 1.0 x with torch.compile; peak memory <= 0.8 x), run by ci/gpu-check.sh in the same run as
ai.lorakit.bench.gpu.Gpt2StepBench with the same shapes.

GPT-2 small from its config (12 layers, 768 wide, 12 heads, vocab 50257; random init: nothing is downloaded),
bf16 weights, LoRA r=16 alpha=32 on c_attn, c_proj, c_fc (Conv1D: fan_in_fan_out=True; adapters in fp32, PEFT's
default for a bf16 base), AdamW lr 1e-3; one step = forward with labels + backward + optimizer step + zero_grad
on B x T random tokens. Tokens per second over the timed steps (synchronised at both ends), and the peak device
memory of the step (torch.cuda.max_memory_allocated).

    python3 benchmarks/peers/gpt2_finetune_peft.py --out peers_gpt2.json [--batch 8 --seq 1024 --steps 8]
    ... --modes eager,compile (default both; compile includes its compilation in the warm-up, not the timing)
"""
import argparse
import json
import sys
import time


def run_mode(torch, transformers, peft, mode, args):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config()
    model = transformers.GPT2LMHeadModel(cfg).to(device="cuda", dtype=torch.bfloat16)
    lcfg = peft.LoraConfig(r=16, lora_alpha=32, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True,
                           lora_dropout=0.0, task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lcfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    fwd = torch.compile(model) if mode == "compile" else model
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device="cuda")

    def step():
        out = fwd(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    loss = None
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    row = {"mode": mode, "steps": args.steps, "seconds": sec,
           "tokens_per_s": args.batch * args.seq * args.steps / sec,
           "peak_mem_bytes": torch.cuda.max_memory_allocated(),
           "last_loss": float(loss), "trainable_params": sum(p.numel() for p in params),
           "adapter_dtype": str(params[0].dtype)}
    del model, fwd, opt
    torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch
    import transformers
    import peft

    result = {"peer": "gpt2_finetune_peft", "torch": torch.__version__, "transformers": transformers.__version__,
              "peft": peft.__version__, "batch": args.batch, "seq_len": args.seq, "rows": []}
    if not torch.cuda.is_available():
        result["error"] = "no CUDA device visible to torch"
    else:
        result["device"] = torch.cuda.get_device_name(0)
        for mode in args.modes.split(","):
            try:
                row = run_mode(torch, transformers, peft, mode, args)
            except Exception as e:  # noqa: BLE001 -- record and go on (compile may be unavailable)
                row = {"mode": mode, "error": f"{type(e).__name__}: {e}"}
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())

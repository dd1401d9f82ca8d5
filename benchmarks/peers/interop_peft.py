#!/usr/bin/env python3
"""The interop check of ci/gpu-check.sh (GPU.md step 3): a tiny GPT-2 saved by transformers, fine-tuned by the
lorakit CLI, its adapter loaded by PEFT, logits compared.

    python3 interop_peft.py make-base DIR
        A tiny GPT-2 (vocab 256 so that lorakit's byte tokenizer fits, 128 positions, 64 wide, 2 layers, 4 heads),
        random init with seed 0, saved by transformers as DIR/config.json + DIR/model.safetensors, and a small
        training text DIR.txt beside it. Prints the probe tokens as a comma-separated list.
    python3 interop_peft.py compare BASE ADAPTER LORAKIT_JSON [--out OUT.json] [--atol 1e-2 --rtol 1e-2]
        Loads BASE with transformers (fp32), ADAPTER with peft.PeftModel.from_pretrained, computes the logits of
        LORAKIT_JSON's "tokens" and compares them with its "logits" (what lorakit computed with the same model and
        adapter): |lorakit - peft| <= atol + rtol |peft| element by element. Also reports how far the adapter moves
        the logits from the base model's: the check passes only when that is more than 2 atol, so an adapter
        that did nothing cannot pass unnoticed. Tolerances are the bf16 row of lorakit's table (the CUDA backend
        may keep the base in bf16). Exit 0 when they match, 1 when not.
"""
import argparse
import json
import sys

PROBE = [(i * 37 + 11) % 256 for i in range(24)]


def make_base(d):
    import os
    import torch
    import transformers
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=256, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    model.save_pretrained(d, safe_serialization=True)
    words = ["lorakit", "adapter", "rank", "low", "matrix", "tensor", "kernel", "gradient", "step", "merge"]
    lines = []
    for i in range(400):
        lines.append(" ".join(words[(i * k + k) % len(words)] for k in range(1, 12)) + ".")
    with open(os.path.normpath(d) + ".txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(",".join(str(t) for t in PROBE))
    return 0


def compare(base, adapter, lk_json, out, atol, rtol):
    import torch
    import transformers
    import peft
    lk = json.load(open(lk_json))
    tokens = lk["tokens"]
    model = transformers.GPT2LMHeadModel.from_pretrained(base, torch_dtype=torch.float32)
    model.eval()
    ids = torch.tensor([tokens])
    with torch.no_grad():
        base_logits = model(ids).logits[0].double()
    pm = peft.PeftModel.from_pretrained(model, adapter)
    pm.eval()
    with torch.no_grad():
        peft_logits = pm(ids).logits[0].double()
    mine = torch.tensor(lk["logits"], dtype=torch.float64).reshape(peft_logits.shape)
    diff = (mine - peft_logits).abs()
    allowed = atol + rtol * peft_logits.abs()
    bad = int((diff > allowed).sum())
    res = {"check": "interop", "tokens": len(tokens), "vocab": int(peft_logits.shape[-1]),
           "peft": peft.__version__, "transformers": transformers.__version__,
           "lorakit_backend": lk.get("backend"),
           "max_abs_diff": float(diff.max()), "mismatches": bad,
           "adapter_moves_logits_by": float((peft_logits - base_logits).abs().max()),
           "atol": atol, "rtol": rtol}
    # meaningful only if the trained adapter moved the logits well beyond the tolerance
    res["ok"] = bad == 0 and res["adapter_moves_logits_by"] > 2 * atol
    print(json.dumps(res))
    if out:
        json.dump(res, open(out, "w"), indent=1)
    return 0 if res["ok"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mb = sub.add_parser("make-base")
    mb.add_argument("dir")
    cp = sub.add_parser("compare")
    cp.add_argument("base")
    cp.add_argument("adapter")
    cp.add_argument("lorakit_json")
    cp.add_argument("--out")
    cp.add_argument("--atol", type=float, default=1e-2)
    cp.add_argument("--rtol", type=float, default=1e-2)
    args = ap.parse_args()
    if args.cmd == "make-base":
        return make_base(args.dir)
    return compare(args.base, args.adapter, args.lorakit_json, args.out, args.atol, args.rtol)


if __name__ == "__main__":
    sys.exit(main())

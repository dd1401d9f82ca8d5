#!/usr/bin/python3
"""CPU peer of lorakit's LoRA training step, for benchmarks/results/cpu-peer.md (ai.lorakit.bench.variants.CpuPeerBenchmark).

The same GPT-2 architecture in plain PyTorch 1.13 (no transformers/peft installed on this machine), loaded from the
same Hugging Face layout checkpoint (config.json + model.safetensors, parsed here with struct + json, BF16/F16/F32),
the same LoRA configuration as `lorakit train` (r, alpha, targets c_attn, c_proj, c_fc; GPT-2's Conv1D stores W as
[in, out], i.e. fan_in_fan_out; A [r, in] Kaiming-uniform, B [out, r] zero, y = x W + b + s * (x A^T) B^T as PEFT's
lora.Linear), AdamW over A and B only (torch.optim.AdamW, betas 0.9/0.999, eps 1e-8, no weight decay), gradient
norm clipped to 1.0, and the very token windows lorakit's Trainer draws (an int32 file the Java runner exports).
The model: x = wte[ids] + wpe[t]; per block x += attn.c_proj(causal_attention(attn.c_attn(ln_1(x)))),
x += mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x)))); logits = ln_f(x) wte^T; mean cross-entropy. No dropout (as lorakit).

Run by the Java runner; by hand:
    /usr/bin/python3 benchmarks/peers/train_peer.py --config run.json
run.json: {"model_dir", "windows_file", "batch", "seq_len", "warmup", "steps", "r", "alpha", "targets", "lr",
"threads"}. Prints one JSON line: tokens_per_s over the timed steps (after the warm-up steps), step times, the first
step's loss (before any update: B = 0, so it is the base model's loss, comparable with lorakit's), peak RSS (VmHWM of
/proc/self/status: ru_maxrss would carry over the JVM's peak, since Linux keeps it across the exec of a child the
JVM spawned).
"""
import argparse
import json
import math
import resource
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    """name -> fp32 tensor; header = u64 little-endian length + JSON, then the data buffer (offsets relative to it)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        buf = bytearray(raw[base + begin:base + end])
        t = torch.frombuffer(buf, dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name.removeprefix("transformer.")] = t.float()
    return out


class Conv1DLoRA(nn.Module):
    """GPT-2 Conv1D (W [in, out], y = x W + b) with an optional LoRA branch (A [r, in], B [out, r], scale s)."""

    def __init__(self, w, b, r, alpha, lora):
        super().__init__()
        self.weight = nn.Parameter(w, requires_grad=False)
        self.bias = nn.Parameter(b, requires_grad=False)
        self.lora = lora
        if lora:
            fan_in, out = w.shape
            self.lora_A = nn.Parameter(torch.empty(r, fan_in))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.lora_B = nn.Parameter(torch.zeros(out, r))
            self.scaling = alpha / r

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], self.weight.shape[1])
        if self.lora:
            y = y + (x @ self.lora_A.t()) @ self.lora_B.t() * self.scaling
        return y


class Gpt2(nn.Module):
    def __init__(self, cfg, sd, r, alpha, targets):
        super().__init__()
        self.n_head = cfg["n_head"]
        eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.wte = nn.Parameter(sd["wte.weight"], requires_grad=False)
        self.wpe = nn.Parameter(sd["wpe.weight"], requires_grad=False)

        def ln(prefix):
            m = nn.LayerNorm(sd[prefix + ".weight"].shape[0], eps=eps)
            m.weight = nn.Parameter(sd[prefix + ".weight"], requires_grad=False)
            m.bias = nn.Parameter(sd[prefix + ".bias"], requires_grad=False)
            return m

        def lin(name):
            lora = any(name == t or name.endswith("." + t) for t in targets)
            return Conv1DLoRA(sd[name + ".weight"], sd[name + ".bias"], r, alpha, lora)

        self.blocks = nn.ModuleList()
        for i in range(cfg["n_layer"]):
            h = f"h.{i}."
            blk = nn.Module()
            blk.ln_1 = ln(h + "ln_1")
            blk.c_attn = lin(h + "attn.c_attn")
            blk.attn_proj = lin(h + "attn.c_proj")
            blk.ln_2 = ln(h + "ln_2")
            blk.c_fc = lin(h + "mlp.c_fc")
            blk.mlp_proj = lin(h + "mlp.c_proj")
            self.blocks.append(blk)
        self.ln_f = ln("ln_f")

    def forward(self, ids, targets):
        bsz, t = ids.shape
        c = self.wte.shape[1]
        hd = c // self.n_head
        x = self.wte[ids] + self.wpe[:t]
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        for blk in self.blocks:
            qkv = blk.c_attn(blk.ln_1(x))
            q, k, v = qkv.split(c, dim=2)
            q = q.view(bsz, t, self.n_head, hd).transpose(1, 2)
            k = k.view(bsz, t, self.n_head, hd).transpose(1, 2)
            v = v.view(bsz, t, self.n_head, hd).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).reshape(bsz, t, c)
            x = x + blk.attn_proj(y)
            x = x + blk.mlp_proj(F.gelu(blk.c_fc(blk.ln_2(x)), approximate="tanh"))
        logits = self.ln_f(x) @ self.wte.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def status_mib(key):
    """A "Key:  123 kB" line of /proc/self/status in MiB (VmHWM: peak resident set of this process image, reset by
    exec; VmRSS: now); ru_maxrss if /proc is missing."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    cfg = json.load(open(ap.parse_args().config))
    rss_after_import = status_mib("VmRSS")      # torch and numpy loaded, no model yet
    torch.set_num_threads(cfg.get("threads", 2))
    torch.manual_seed(0)
    model_cfg = json.load(open(cfg["model_dir"] + "/config.json"))
    sd = read_safetensors(cfg["model_dir"] + "/model.safetensors")
    model = Gpt2(model_cfg, sd, cfg["r"], cfg["alpha"], cfg["targets"])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    b, t = cfg["batch"], cfg["seq_len"]
    windows = np.fromfile(cfg["windows_file"], dtype="<i4").reshape(-1, b, t + 1)
    steps, warmup = cfg["steps"], cfg["warmup"]
    assert windows.shape[0] >= warmup + steps, windows.shape
    times, first_loss = [], None
    model.train()
    for s in range(warmup + steps):
        w = torch.from_numpy(windows[s].astype(np.int64))
        t0 = time.perf_counter()
        loss = model(w[:, :-1], w[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if s == 0:
            first_loss = loss.item()
        if s >= warmup:
            times.append(dt)
    tokens = steps * b * t
    print(json.dumps({
        "tokens_per_s": tokens / sum(times),
        "step_s": times,
        "first_loss": first_loss,
        "last_loss": loss.item(),
        "trainable": sum(p.numel() for p in params),
        "peak_rss_mib": status_mib("VmHWM"),
        "rss_after_import_mib": rss_after_import,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""CPU peer of lorakit's LoRA training step, for benchmarks/results/cpu-peer.md and cpu-peer-llama.md
(ai.lorakit.bench.variants.CpuPeerBenchmark). config.json's model_type picks GPT-2 or Llama (below).

The same GPT-2 architecture in plain PyTorch 1.13 (no transformers/peft installed on this machine), loaded from the
same Hugging Face layout checkpoint (config.json + model.safetensors, parsed here with struct + json, BF16/F16/F32),
the same LoRA configuration as `lorakit train` (r, alpha, targets c_attn, c_proj, c_fc; GPT-2's Conv1D stores W as
[in, out], i.e. fan_in_fan_out; A [r, in] Kaiming-uniform, B [out, r] zero, y = x W + b + s * (x A^T) B^T as PEFT's
lora.Linear), AdamW over A and B only (torch.optim.AdamW, betas 0.9/0.999, eps 1e-8, no weight decay), gradient
norm clipped to 1.0, and the very token windows lorakit's Trainer draws (an int32 file the Java runner exports).
The model: x = wte[ids] + wpe[t]; per block x += attn.c_proj(causal_attention(attn.c_attn(ln_1(x)))),
x += mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x)))); logits = ln_f(x) wte^T; mean cross-entropy. No dropout (as lorakit).
Llama (model_type "llama", as HF's LlamaForCausalLM): x = embed_tokens[ids]; per layer
x += o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h))) with h = input_layernorm(x) (RMSNorm), k and v
heads shared by groups of query heads (GQA), RoPE on the two halves of each head (HF's rotate_half);
x += down_proj(silu(gate_proj(h)) * up_proj(h)) with h = post_attention_layernorm(x); logits = norm(x) lm_head^T
(lm_head = embed_tokens when tie_word_embeddings). nn.Linear weights are [out, in]: LoRA A [r, in], B [out, r].

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


class LinearLoRA(nn.Module):
    """nn.Linear without bias (W [out, in], y = x W^T) with an optional LoRA branch (A [r, in], B [out, r], scale s)."""

    def __init__(self, w, r, alpha, lora):
        super().__init__()
        self.weight = nn.Parameter(w, requires_grad=False)
        self.lora = lora
        if lora:
            out, fan_in = w.shape
            self.lora_A = nn.Parameter(torch.empty(r, fan_in))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.lora_B = nn.Parameter(torch.zeros(out, r))
            self.scaling = alpha / r

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora:
            y = y + (x @ self.lora_A.t()) @ self.lora_B.t() * self.scaling
        return y


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Llama(nn.Module):
    def __init__(self, cfg, sd, r, alpha, targets):
        super().__init__()
        sd = {k.removeprefix("model."): v for k, v in sd.items()}
        self.n_head = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads", self.n_head)
        self.hd = cfg.get("head_dim", cfg["hidden_size"] // self.n_head)
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.embed = nn.Parameter(sd["embed_tokens.weight"], requires_grad=False)
        self.lm_head = self.embed if cfg.get("tie_word_embeddings", False) \
            else nn.Parameter(sd["lm_head.weight"], requires_grad=False)
        theta = cfg.get("rope_theta", 10000.0)
        inv = 1.0 / theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd)
        ang = torch.outer(torch.arange(cfg["max_position_embeddings"], dtype=torch.float32), inv)
        self.cos = torch.cat((ang, ang), dim=-1).cos()      # [P, D]
        self.sin = torch.cat((ang, ang), dim=-1).sin()

        def lin(name):
            lora = any(name == t or name.endswith("." + t) for t in targets)
            return LinearLoRA(sd[name + ".weight"], r, alpha, lora)

        def norm(name):
            return nn.Parameter(sd[name + ".weight"], requires_grad=False)

        self.blocks = nn.ModuleList()
        for i in range(cfg["num_hidden_layers"]):
            p = f"layers.{i}."
            blk = nn.Module()
            blk.ln_1 = norm(p + "input_layernorm")
            for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(blk, m, lin(p + "self_attn." + m))
            blk.ln_2 = norm(p + "post_attention_layernorm")
            for m in ("gate_proj", "up_proj", "down_proj"):
                setattr(blk, m, lin(p + "mlp." + m))
            self.blocks.append(blk)
        self.norm = norm("norm")

    def forward(self, ids, targets):
        bsz, t = ids.shape
        hd, nh, nkv = self.hd, self.n_head, self.n_kv
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.embed[ids]
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        for blk in self.blocks:
            h = rms_norm(x, blk.ln_1, self.eps)
            q = blk.q_proj(h).view(bsz, t, nh, hd).transpose(1, 2)
            k = blk.k_proj(h).view(bsz, t, nkv, hd).transpose(1, 2)
            v = blk.v_proj(h).view(bsz, t, nkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            x = x + blk.o_proj((att @ v).transpose(1, 2).reshape(bsz, t, nh * hd))
            h = rms_norm(x, blk.ln_2, self.eps)
            x = x + blk.down_proj(F.silu(blk.gate_proj(h)) * blk.up_proj(h))
        logits = rms_norm(x, self.norm, self.eps) @ self.lm_head.t()
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


MODELS = {"gpt2": Gpt2, "llama": Llama}


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
    model_type = model_cfg.get("model_type", "gpt2")
    if model_type not in MODELS:
        raise SystemExit(f"train_peer.py: model_type {model_type!r} is not implemented here (have {sorted(MODELS)})")
    model = MODELS[model_type](model_cfg, sd, cfg["r"], cfg["alpha"], cfg["targets"])
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

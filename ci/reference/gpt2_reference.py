#!/usr/bin/python3
"""Independent PyTorch reference for lorakit's GPT-2 model (ai.lorakit.models.decoder.DecoderModel, GPT-2 family).

A GPT-2 written here from the architecture (Radford et al. 2019; HF GPT2LMHeadModel's parameter names and
layouts), in plain torch functions, no transformers package. It writes a tiny HF-layout checkpoint with random
weights and the expected logits, losses and gradients of
  - the base model (full fine-tuning: gradient of every parameter),
  - LoRA  (r=4, alpha=8, s=alpha/r=2) on every attn.c_attn and mlp.c_fc, non-identity (random B),
  - DoRA  (same, plus a magnitude vector m != ||W + sBA||; the norm is detached, DoRA paper section 4.3 / PEFT).
Everything is computed with float64 autograd from the float32-rounded stored values, then stored as F32, so a
comparison only sees the Java side's fp32 arithmetic. See ci/reference/README.md, section "GPT-2".

Run from the repository root (deterministic, rewrites identical bytes):
    /usr/bin/python3 ci/reference/gpt2_reference.py
Needs only torch (Debian's python3-torch). safetensors files are written with struct + json.

Architecture (HF names, Conv1D weights stored [in, out], y = x W + b):
    h0 = wte[ids] + wpe[0..T-1]
    per block i:  a = ln_1(h); qkv = a W_attn + b_attn; split q,k,v [C each]; heads H of size D = C/H;
                  att = softmax(q k^T / sqrt(D) + causal mask); o = merge_heads(att v) W_proj + b_proj;
                  h = h + o; m = gelu_new(ln_2(h) W_fc + b_fc) W_mproj + b_mproj; h = h + m
    logits = ln_f(h) wte^T  (lm_head tied to wte); LayerNorm eps 1e-5 (biased variance); no dropout.
    gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Loss = mean cross-entropy over all B*T targets (windows [B, T+1]: inputs columns 0..T-1, targets 1..T).
"""

import json
import math
import os
import struct

import torch
import torch.nn.functional as F

GENERATOR = "ci/reference/gpt2_reference.py"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gpt2")
F64 = torch.float64

# tiny config
V, P, C, L, H = 37, 16, 16, 2, 2
D = C // H
EPS = 1e-5
B_WIN, T = 2, 8            # windows [B, T+1]
R, ALPHA = 4, 8.0          # LoRA rank and alpha, s = alpha / r
S = ALPHA / R
TARGETS = ("attn.c_attn", "mlp.c_fc")


# ------------------------------------------------------------------------------------------------ safetensors

# huggingface/safetensors Dtype enum order; the Rust writer lays tensors out by descending dtype, then name.
_DTYPE_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]


def _encode(t, dtype):
    t = t.detach().contiguous().reshape(-1)
    if dtype == "F32":
        return struct.pack("<%df" % t.numel(), *t.to(torch.float32).tolist())
    if dtype == "BF16":
        # round to nearest even (torch's float32 -> bfloat16), then the raw 16 bits
        bits = t.to(torch.float32).to(torch.bfloat16).view(torch.int16)
        return struct.pack("<%dh" % t.numel(), *bits.tolist())
    if dtype == "I64":
        return struct.pack("<%dq" % t.numel(), *t.to(torch.int64).tolist())
    if dtype == "I32":
        return struct.pack("<%di" % t.numel(), *t.to(torch.int32).tolist())
    raise ValueError(dtype)


def write_safetensors(path, tensors, metadata, dtypes=None, default="F32"):
    """u64 LE header length N, N bytes of compact JSON (__metadata__ first, then tensors in data order) padded
    with spaces to a multiple of 8, then little-endian data; tensors ordered by descending dtype, then name."""
    dtypes = dtypes or {}
    order = sorted(tensors, key=lambda n: (-_DTYPE_ORDER.index(dtypes.get(n, default)), n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name in order:
        dt = dtypes.get(name, default)
        data = _encode(tensors[name], dt)
        header[name] = {"dtype": dt, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Reader for the self-check (round trip of every file written); returns float64 / int64 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        blob = raw[8 + n + b:8 + n + e]
        dt = info["dtype"]
        if dt == "F32":
            t = torch.tensor(struct.unpack("<%df" % (len(blob) // 4), blob), dtype=torch.float32).to(F64)
        elif dt == "BF16":
            t = torch.tensor(struct.unpack("<%dh" % (len(blob) // 2), blob), dtype=torch.int16)
            t = t.view(torch.bfloat16).to(F64)
        elif dt == "I64":
            t = torch.tensor(struct.unpack("<%dq" % (len(blob) // 8), blob), dtype=torch.int64)
        elif dt == "I32":
            t = torch.tensor(struct.unpack("<%di" % (len(blob) // 4), blob), dtype=torch.int64)
        else:
            raise ValueError(dt)
        out[name] = t.reshape(info["shape"])
    return out, meta


# ------------------------------------------------------------------------------------------------ helpers

def f32(t):
    """Round to float32 and back: references are computed from exactly the values the F32 files hold."""
    return t.to(torch.float32).to(F64)


def bf16(t):
    return t.to(torch.float32).to(torch.bfloat16).to(F64)


def randn(*shape, std=1.0):
    return f32(torch.randn(*shape, dtype=F64) * std)


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def layer_norm(x, w, b):
    """(x - mean) / sqrt(var + eps) * w + b over the last dim, biased variance (torch / HF LayerNorm)."""
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def cross_entropy_mean(logits, targets):
    """mean over all positions of -log softmax(logits)[target]; logits [N,V], targets [N]."""
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return -logp.gather(1, targets[:, None]).mean()


# ------------------------------------------------------------------------------------------------ model

def param_names():
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    for i in range(L):
        p = "transformer.h.%d." % i
        names += [p + "ln_1.weight", p + "ln_1.bias", p + "attn.c_attn.weight", p + "attn.c_attn.bias",
                  p + "attn.c_proj.weight", p + "attn.c_proj.bias", p + "ln_2.weight", p + "ln_2.bias",
                  p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", p + "mlp.c_proj.weight", p + "mlp.c_proj.bias"]
    return names + ["transformer.ln_f.weight", "transformer.ln_f.bias"]


def init_weights(seed):
    """Random weights, std 0.15-0.2 for matrices (so logits and attention are far from uniform), LayerNorm
    gains 1 + 0.1 N(0,1), biases 0.1 N(0,1). HF shapes; Conv1D weights [in, out]."""
    torch.manual_seed(seed)
    w = {"transformer.wte.weight": randn(V, C, std=0.2), "transformer.wpe.weight": randn(P, C, std=0.2)}
    for i in range(L):
        p = "transformer.h.%d." % i
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"] = f32(1 + 0.1 * torch.randn(C, dtype=F64))
            w[p + ln + ".bias"] = randn(C, std=0.1)
        for mod, fin, fout in (("attn.c_attn", C, 3 * C), ("attn.c_proj", C, C),
                               ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)):
            w[p + mod + ".weight"] = randn(fin, fout, std=0.15 if fin == C else 0.1)
            w[p + mod + ".bias"] = randn(fout, std=0.1)
    w["transformer.ln_f.weight"] = f32(1 + 0.1 * torch.randn(C, dtype=F64))
    w["transformer.ln_f.bias"] = randn(C, std=0.1)
    assert list(w) == param_names() or sorted(w) == sorted(param_names())
    return w


def conv1d(x, w, b, name, adapters):
    """GPT-2 Conv1D y = x W + b (W [in,out]) with an optional LoRA / DoRA adapter on module `name`.
    LoRA (VARIANTS.md section 1): y += s (x A^T) B^T, A [r,in], B [out,r].
    DoRA (section 5): y = m/n o (x W + s x A^T B^T) + b, n = ||W_o + s (BA)_o|| per output unit o, detached;
    with fan_in_fan_out W is [in,out], so unit o's weight vector is column o of W (row o of W^T)."""
    y = x @ w
    ad = adapters.get(name) if adapters else None
    if ad is None:
        return y + b
    A, Bm = ad["lora_A"], ad["lora_B"]
    lora = S * ((x @ A.t()) @ Bm.t())
    if "lora_magnitude_vector" not in ad:
        return y + lora + b
    n = (w.t() + S * (Bm @ A)).norm(dim=1).detach()             # [out]
    return ad["lora_magnitude_vector"] / n * (y + lora) + b


def forward(w, ids, adapters=None):
    """ids [B,T] int64 -> logits [B,T,V] (float64)."""
    bsz, t = ids.shape
    h = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:t][None]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(L):
        p = "transformer.h.%d." % i
        a = layer_norm(h, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        qkv = conv1d(a, w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"], p + "attn.c_attn", adapters)
        q, k, v = qkv.split(C, dim=-1)                           # [B,T,C] each
        q, k, v = (z.reshape(bsz, t, H, D).transpose(1, 2) for z in (q, k, v))   # [B,H,T,D]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        o = (att @ v).transpose(1, 2).reshape(bsz, t, C)
        h = h + conv1d(o, w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"], p + "attn.c_proj", adapters)
        a = layer_norm(h, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        m = gelu_new(conv1d(a, w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"], p + "mlp.c_fc", adapters))
        h = h + conv1d(m, w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"], p + "mlp.c_proj", adapters)
    h = layer_norm(h, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"])
    return h @ w["transformer.wte.weight"].t()                 # tied lm_head


def loss_of(logits, windows):
    return cross_entropy_mean(logits.reshape(-1, V), windows[:, 1:].reshape(-1))


# ------------------------------------------------------------------------------------------------ self-checks

def check_building_blocks():
    """The hand-written pieces against torch's built-ins (an independent cross-check of the formulas)."""
    torch.manual_seed(99)
    x = torch.randn(5, C, dtype=F64)
    g, b = torch.randn(C, dtype=F64), torch.randn(C, dtype=F64)
    assert torch.allclose(layer_norm(x, g, b), F.layer_norm(x, (C,), g, b, EPS), atol=1e-12)
    assert torch.allclose(gelu_new(x), F.gelu(x, approximate="tanh"), atol=1e-12)
    z, tg = torch.randn(6, V, dtype=F64), torch.randint(0, V, (6,))
    assert torch.allclose(cross_entropy_mean(z, tg), F.cross_entropy(z, tg), atol=1e-12)
    # causal attention == a per-position loop over the visible prefix
    q, k, v = (torch.randn(1, H, 4, D, dtype=F64) for _ in range(3))
    att = ((q @ k.transpose(-1, -2)) / math.sqrt(D)).masked_fill(~torch.tril(torch.ones(4, 4, dtype=torch.bool)),
                                                                  float("-inf")).softmax(-1) @ v
    for t in range(4):
        wts = ((q[:, :, t:t + 1] @ k[:, :, :t + 1].transpose(-1, -2)) / math.sqrt(D)).softmax(-1)
        assert torch.allclose(att[:, :, t:t + 1], wts @ v[:, :, :t + 1], atol=1e-12)


def merged(w, adapters):
    """Base weights with the adapters merged (LoRA: W + s (BA)^T; DoRA: column-wise m/n (W + s (BA)^T))."""
    out = dict(w)
    for name, ad in adapters.items():
        W = w[name + ".weight"]
        delta = S * (ad["lora_B"] @ ad["lora_A"]).t()              # [in,out]
        Wm = W + delta
        if "lora_magnitude_vector" in ad:
            Wm = Wm * (ad["lora_magnitude_vector"] / Wm.norm(dim=0))[None, :]
        out[name + ".weight"] = Wm
    return out


# ------------------------------------------------------------------------------------------------ cases

def config_json():
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": V - 1,
        "embd_pdrop": 0.0,
        "eos_token_id": V - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": EPS,
        "model_type": "gpt2",
        "n_ctx": P,
        "n_embd": C,
        "n_head": H,
        "n_inner": None,
        "n_layer": L,
        "n_positions": P,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.0,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": V,
    }


def write_checkpoint(dirname, w, dtype):
    cfg = config_json()
    cfg["torch_dtype"] = "bfloat16" if dtype == "BF16" else "float32"
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    # HF save_pretrained of GPT2LMHeadModel: "transformer.*" keys, tied lm_head.weight dropped, {"format":"pt"}
    write_safetensors(os.path.join(dirname, "model.safetensors"), w, {"format": "pt"}, default=dtype)


def meta(case, seed, **extra):
    m = {"case": case, "generator": GENERATOR, "torch": torch.__version__, "math": "float64 autograd, stored F32",
         "vocab_size": V, "n_positions": P, "n_embd": C, "n_layer": L, "n_head": H, "B": B_WIN, "T": T,
         "loss": "mean cross-entropy over B*T targets", "dropout": "0.0", "seed": seed}
    m.update(extra)
    return m


def base_case(w, windows, seed):
    ws = {k: leaf(v) for k, v in w.items()}
    logits = forward(ws, windows[:, :-1])
    loss = loss_of(logits, windows)
    loss.backward()
    out = {"tokens": windows, "logits": logits, "loss": loss.detach().reshape(())}
    for k, v in ws.items():
        out["grad." + k] = v.grad
    write_safetensors(os.path.join(OUT, "expected_base.safetensors"), out,
                      meta("base", seed, trainable="every base parameter (full fine-tune; lm_head tied to wte)"),
                      dtypes={"tokens": "I64"})
    return logits.detach(), loss.item()


def adapter_case(case, w, windows, seed, dora):
    torch.manual_seed(seed)
    adapters = {}
    for i in range(L):
        for mod in TARGETS:
            name = "transformer.h.%d.%s" % (i, mod)
            W = w[name + ".weight"]                                   # [in,out]
            fin, fout = W.shape
            A = randn(R, fin, std=0.15)                               # lora_A.weight [r,in]
            Bm = randn(fout, R, std=0.15)                             # lora_B.weight [out,r], non-zero
            ad = {"lora_A": A, "lora_B": Bm}
            if dora:
                n0 = (W.t() + S * (Bm @ A)).norm(dim=1)              # ||W_o + s(BA)_o||, o = column of W
                ad["lora_magnitude_vector"] = f32(n0 * (1 + 0.3 * (2 * torch.rand(fout, dtype=F64) - 1)))
            adapters[name] = ad
    leaves = {n: {k: leaf(v) for k, v in ad.items()} for n, ad in adapters.items()}
    logits = forward(w, windows[:, :-1], leaves)
    loss = loss_of(logits, windows)
    loss.backward()
    out = {"tokens": windows, "logits": logits, "loss": loss.detach().reshape(())}
    for n, ad in leaves.items():
        for k, v in ad.items():
            out["%s.%s" % (n, k)] = adapters[n][k]
            out["grad.%s.%s" % (n, k)] = v.grad
    # self-check: merging the adapters into the base weights reproduces the adapted logits
    assert torch.allclose(forward(merged(w, adapters), windows[:, :-1]), logits.detach(), atol=1e-10)
    write_safetensors(os.path.join(OUT, "expected_%s.safetensors" % case), out,
                      meta(case, seed, variant="dora" if dora else "lora", r=R, alpha=ALPHA, scaling=S,
                           target_modules=",".join(TARGETS), fan_in_fan_out="true",
                           trainable="adapter tensors only (lora_A, lora_B%s)" % (
                               ", lora_magnitude_vector; norm detached" if dora else "")),
                      dtypes={"tokens": "I64"})
    return logits.detach()


def main():
    torch.set_num_threads(1)          # fixed reduction order: identical bytes on every run
    check_building_blocks()
    w = init_weights(seed=1234)
    write_checkpoint(os.path.join(OUT, "tiny"), w, "F32")

    torch.manual_seed(5678)
    windows = torch.randint(0, V, (B_WIN, T + 1), dtype=torch.int64)
    base_logits, base_loss = base_case(w, windows, seed=5678)
    lora_logits = adapter_case("lora", w, windows, seed=2024, dora=False)
    dora_logits = adapter_case("dora", w, windows, seed=2025, dora=True)

    # bf16 copy of the checkpoint, and the base outputs of exactly those bf16-rounded weights
    wb = {k: bf16(v) for k, v in w.items()}
    write_checkpoint(os.path.join(OUT, "model_bf16"), wb, "BF16")
    lb = forward(wb, windows[:, :-1])
    write_safetensors(os.path.join(OUT, "expected_bf16.safetensors"),
                      {"tokens": windows, "logits": lb, "loss": loss_of(lb, windows).reshape(())},
                      meta("bf16", 5678, weights="model_bf16 (bf16-rounded tiny weights), math float64"),
                      dtypes={"tokens": "I64"})

    # round trip of what was written, and sanity: the cases differ and the logits are not trivial
    ck, m = read_safetensors(os.path.join(OUT, "tiny", "model.safetensors"))
    assert m == {"format": "pt"} and sorted(ck) == sorted(param_names())
    assert all(torch.equal(ck[k], w[k]) for k in w)
    ckb, _ = read_safetensors(os.path.join(OUT, "model_bf16", "model.safetensors"))
    assert all(torch.equal(ckb[k], wb[k]) for k in w)
    for case in ("base", "lora", "dora", "bf16"):
        d, _ = read_safetensors(os.path.join(OUT, "expected_%s.safetensors" % case))
        assert torch.equal(d["tokens"], windows)
    assert base_logits.std() > 0.3, base_logits.std()
    assert (lora_logits - base_logits).abs().max() > 0.1 and (dora_logits - lora_logits).abs().max() > 0.1
    print("gpt2 reference written to %s: base loss %.6f (ln V = %.4f), logits std %.3f"
          % (os.path.relpath(OUT), base_loss, math.log(V), base_logits.std().item()))


if __name__ == "__main__":
    main()

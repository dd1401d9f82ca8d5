#!/usr/bin/python3
"""Independent PyTorch reference for lorakit's Llama family (ai.lorakit.models.llama.LlamaFamily): Llama, Mistral,
Qwen2 and Qwen3, written here in plain torch functions from Hugging Face's modeling formulas (no transformers).

For each family it writes a tiny HF-layout checkpoint (config.json + model.safetensors) with random weights and
the expected logits, mean cross-entropy loss and gradients of
  - the base model under full fine-tuning (every parameter; a tied embedding gets both of its gradients),
  - LoRA (r=4, alpha=8, s=2) on every linear of a block (q,k,v,o,gate,up,down_proj), non-identity (random B),
  - DoRA (same, magnitude m != ||W + sBA||, norm detached as in PEFT).
float64 autograd from the float32-rounded stored values, stored as F32 (see ci/reference/README.md, "Llama").

Run from the repository root (deterministic, rewrites identical bytes):
    /usr/bin/python3 ci/reference/llama_reference.py

Architecture (HF names, nn.Linear W [out,in], y = x W^T (+ b)):
    h = embed_tokens[ids]
    per block:  a = rms(h) * input_layernorm;  q = a Wq^T (+bq) [B,T,H,D]; k, v = a Wk^T (+bk), a Wv^T (+bv) [B,T,Hkv,D]
                Qwen3: q = rms_D(q) * q_norm, k = rms_D(k) * k_norm (per head, over D)
                q, k = q cos + rotate_half(q) sin, (same for k); rotate_half(x) = cat(-x2, x1), cos/sin [T,D] = cat(c,c)
                att = softmax(q k_rep^T / sqrt(D) + causal) v_rep (kv head j = h // (H/Hkv)); h += o Wo^T
                m = rms(h) * post_attention_layernorm;  h += (silu(m Wg^T) * (m Wu^T)) Wd^T
    logits = (rms(h) * norm) lm_head^T   (lm_head = embed_tokens when tie_word_embeddings)
RoPE angles follow HF in float32: inv_freq = 1 / theta^(arange(0,D,2)/D), the llama3 rescaling in float32,
angle = float32(t * inv_freq); cos/sin of that angle in float64.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import write_safetensors, read_safetensors, f32, randn, leaf, cross_entropy_mean  # noqa: E402

GENERATOR = "ci/reference/llama_reference.py"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llama")
F64 = torch.float64
B_WIN, T = 2, 8
R, ALPHA = 4, 8.0
S = ALPHA / R
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

BASE = {"vocab_size": 48, "hidden_size": 24, "intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "hidden_act": "silu"}
CASES = {
    # untied head, llama3 rope_scaling whose three bands all occur at D=6 (wavelengths 6.3 / 135 / 2920 against
    # 256 / 4 = 64 and 256 / 1 = 256)
    "llama": dict(BASE, model_type="llama", architectures=["LlamaForCausalLM"], tie_word_embeddings=False,
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 256}),
    # tied head, a sliding window longer than the windows used
    "mistral": dict(BASE, model_type="mistral", architectures=["MistralForCausalLM"], tie_word_embeddings=True,
                    sliding_window=32, rope_theta=1000000.0),
    # q/k/v biases, tied, MQA
    "qwen2": dict(BASE, model_type="qwen2", architectures=["Qwen2ForCausalLM"], tie_word_embeddings=True,
                  num_key_value_heads=1, use_sliding_window=False, sliding_window=4096),
    # per-head q/k norm, explicit head_dim != hidden/heads, untied
    "qwen3": dict(BASE, model_type="qwen3", architectures=["Qwen3ForCausalLM"], tie_word_embeddings=False,
                  head_dim=8),
}


def head_dim(cfg):
    return cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])


def param_shapes(cfg):
    c, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    d = head_dim(cfg)
    qw, kw = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    s = {"model.embed_tokens.weight": (v, c)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        s[p + "input_layernorm.weight"] = (c,)
        for proj, out in (("q_proj", qw), ("k_proj", kw), ("v_proj", kw)):
            s[p + "self_attn.%s.weight" % proj] = (out, c)
            if cfg["model_type"] == "qwen2":
                s[p + "self_attn.%s.bias" % proj] = (out,)
        s[p + "self_attn.o_proj.weight"] = (c, qw)
        if cfg["model_type"] == "qwen3":
            s[p + "self_attn.q_norm.weight"] = (d,)
            s[p + "self_attn.k_norm.weight"] = (d,)
        s[p + "post_attention_layernorm.weight"] = (c,)
        s[p + "mlp.gate_proj.weight"] = (f, c)
        s[p + "mlp.up_proj.weight"] = (f, c)
        s[p + "mlp.down_proj.weight"] = (c, f)
    s["model.norm.weight"] = (c,)
    if not cfg["tie_word_embeddings"]:
        s["lm_head.weight"] = (v, c)
    return s


def init_weights(cfg, seed):
    """Matrices std 0.2 (logits far from uniform), norm gains 1 + 0.1 N(0,1), biases 0.1 N(0,1)."""
    torch.manual_seed(seed)
    w = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight"):
            w[name] = f32(1 + 0.1 * torch.randn(*shape, dtype=F64))
        elif name.endswith(".bias"):
            w[name] = randn(*shape, std=0.1)
        else:
            w[name] = randn(*shape, std=0.2)
    return w


def rope_tables(cfg, t):
    """cos, sin [T, D] (float64) of HF's float32 angles, with the llama3 rescaling when configured."""
    d = head_dim(cfg)
    inv = 1.0 / (torch.tensor(cfg["rope_theta"], dtype=torch.float32)
                 ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    sc = cfg.get("rope_scaling")
    if sc:
        old = float(sc["original_max_position_embeddings"])
        lo_w, hi_w = old / sc["low_freq_factor"], old / sc["high_freq_factor"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > lo_w, inv / sc["factor"], inv)
        smooth = (old / wavelen - sc["low_freq_factor"]) / (sc["high_freq_factor"] - sc["low_freq_factor"])
        blended = (1 - smooth) * scaled / sc["factor"] + smooth * scaled
        medium = ~(wavelen < hi_w) & ~(wavelen > lo_w)
        inv = torch.where(medium, blended, scaled).to(torch.float32)
    ang = torch.arange(t, dtype=torch.float32)[:, None] * inv[None, :]      # float32 products [T, D/2]
    ang = ang.to(F64)
    emb = torch.cat([ang, ang], dim=-1)
    return emb.cos(), emb.sin()


def rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def linear(x, w, name, adapters, bias=None):
    """nn.Linear y = x W^T (+ b), LoRA y += s (x A^T) B^T, DoRA y = m/n (x W^T + s x A^T B^T) (+ b),
    n = ||W_o + s (BA)_o|| per output row, detached."""
    y = x @ w.t()
    ad = adapters.get(name) if adapters else None
    if ad is not None:
        lora = S * ((x @ ad["lora_A"].t()) @ ad["lora_B"].t())
        if "lora_magnitude_vector" in ad:
            n = (w + S * (ad["lora_B"] @ ad["lora_A"])).norm(dim=1).detach()
            y = ad["lora_magnitude_vector"] / n * (y + lora)
        else:
            y = y + lora
    return y if bias is None else y + bias


def forward(cfg, w, ids, adapters=None):
    bsz, t = ids.shape
    hn, kvn, d, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim(cfg), cfg["rms_norm_eps"]
    cos, sin = rope_tables(cfg, t)
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    h = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        a = rms(h, w[p + "input_layernorm.weight"], eps)
        qkv = []
        for proj, n in (("q_proj", hn), ("k_proj", kvn), ("v_proj", kvn)):
            name = p + "self_attn." + proj
            z = linear(a, w[name + ".weight"], name, adapters, w.get(name + ".bias"))
            qkv.append(z.reshape(bsz, t, n, d))
        q, k, v = qkv
        if cfg["model_type"] == "qwen3":
            q = rms(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))                    # [B,n,T,D]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(hn // kvn, dim=1)                             # HF repeat_kv
        v = v.repeat_interleave(hn // kvn, dim=1)
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(d)).masked_fill(~causal, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(bsz, t, hn * d)
        h = h + linear(o, w[p + "self_attn.o_proj.weight"], p + "self_attn.o_proj", adapters)
        m = rms(h, w[p + "post_attention_layernorm.weight"], eps)
        g = linear(m, w[p + "mlp.gate_proj.weight"], p + "mlp.gate_proj", adapters)
        u = linear(m, w[p + "mlp.up_proj.weight"], p + "mlp.up_proj", adapters)
        h = h + linear(g * torch.sigmoid(g) * u, w[p + "mlp.down_proj.weight"], p + "mlp.down_proj", adapters)
    h = rms(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return h @ head.t()


def loss_of(cfg, logits, windows):
    return cross_entropy_mean(logits.reshape(-1, cfg["vocab_size"]), windows[:, 1:].reshape(-1))


def merged(w, adapters):
    out = dict(w)
    for name, ad in adapters.items():
        wm = w[name + ".weight"] + S * (ad["lora_B"] @ ad["lora_A"])
        if "lora_magnitude_vector" in ad:
            wm = wm * (ad["lora_magnitude_vector"] / wm.norm(dim=1))[:, None]
        out[name + ".weight"] = wm
    return out


def meta(cfg, case, seed, **extra):
    m = {"case": case, "family": cfg["model_type"], "generator": GENERATOR, "torch": torch.__version__,
         "math": "float64 autograd, stored F32", "B": B_WIN, "T": T, "seed": seed,
         "loss": "mean cross-entropy over B*T targets"}
    m.update(extra)
    return m


def run_family(fam, cfg, seed):
    out_dir = os.path.join(OUT, fam)
    w = init_weights(cfg, seed)
    os.makedirs(os.path.join(out_dir, "tiny"), exist_ok=True)
    with open(os.path.join(out_dir, "tiny", "config.json"), "w") as f:
        f.write(json.dumps(dict(cfg, torch_dtype="float32"), indent=2, sort_keys=True) + "\n")
    write_safetensors(os.path.join(out_dir, "tiny", "model.safetensors"), w, {"format": "pt"})

    torch.manual_seed(seed + 1)
    windows = torch.randint(0, cfg["vocab_size"], (B_WIN, T + 1), dtype=torch.int64)
    ws = {k: leaf(v) for k, v in w.items()}
    logits = forward(cfg, ws, windows[:, :-1])
    loss = loss_of(cfg, logits, windows)
    loss.backward()
    base = {"tokens": windows, "logits": logits, "loss": loss.detach().reshape(())}
    base.update({"grad." + k: v.grad for k, v in ws.items()})
    write_safetensors(os.path.join(out_dir, "expected_base.safetensors"), base,
                      meta(cfg, "base", seed, trainable="every base parameter"), dtypes={"tokens": "I64"})

    results = [logits.detach()]
    for case, dora in (("lora", False), ("dora", True)):
        torch.manual_seed(seed + (2 if dora else 3))
        adapters = {}
        for i in range(cfg["num_hidden_layers"]):
            for mod in TARGETS:
                name = "model.layers.%d.%s.%s" % (i, "mlp" if mod.endswith(("gate_proj", "up_proj", "down_proj"))
                                                  else "self_attn", mod)
                wt = w[name + ".weight"]
                fout, fin = wt.shape
                ad = {"lora_A": randn(R, fin, std=0.15), "lora_B": randn(fout, R, std=0.15)}
                if dora:
                    n0 = (wt + S * (ad["lora_B"] @ ad["lora_A"])).norm(dim=1)
                    ad["lora_magnitude_vector"] = f32(n0 * (1 + 0.3 * (2 * torch.rand(fout, dtype=F64) - 1)))
                adapters[name] = ad
        leaves = {n: {k: leaf(v) for k, v in ad.items()} for n, ad in adapters.items()}
        lg = forward(cfg, w, windows[:, :-1], leaves)
        ls = loss_of(cfg, lg, windows)
        ls.backward()
        out = {"tokens": windows, "logits": lg, "loss": ls.detach().reshape(())}
        for n, ad in leaves.items():
            for k, v in ad.items():
                out["%s.%s" % (n, k)] = adapters[n][k]
                out["grad.%s.%s" % (n, k)] = v.grad
        assert torch.allclose(forward(cfg, merged(w, adapters), windows[:, :-1]), lg.detach(), atol=1e-10)
        write_safetensors(os.path.join(out_dir, "expected_%s.safetensors" % case), out,
                          meta(cfg, case, seed, variant=case, r=R, alpha=ALPHA, scaling=S,
                               target_modules=",".join(TARGETS)), dtypes={"tokens": "I64"})
        results.append(lg.detach())

    ck, _ = read_safetensors(os.path.join(out_dir, "tiny", "model.safetensors"))
    assert sorted(ck) == sorted(w) and all(torch.equal(ck[k], w[k]) for k in w)
    assert results[0].std() > 0.3, results[0].std()
    assert (results[1] - results[0]).abs().max() > 0.1 and (results[2] - results[1]).abs().max() > 0.1
    print("%s reference written to %s: base loss %.6f (ln V = %.4f), logits std %.3f"
          % (fam, os.path.relpath(out_dir), loss.item(), math.log(cfg["vocab_size"]), results[0].std().item()))


def check_building_blocks():
    """rotate_half RoPE == the complex-rotation form on pairs (i, i + D/2); repeat_interleave == HF repeat_kv."""
    torch.manual_seed(3)
    x = torch.randn(2, 3, 5, 8, dtype=F64)
    ang = torch.randn(5, 4, dtype=F64)
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    y = x * cos + rotate_half(x) * sin
    z = torch.complex(x[..., :4], x[..., 4:]) * torch.polar(torch.ones_like(ang), ang)
    assert torch.allclose(y, torch.cat([z.real, z.imag], -1), atol=1e-12)
    kv = torch.randn(1, 2, 3, 4, dtype=F64)
    rep = kv[:, :, None].expand(1, 2, 3, 3, 4).reshape(1, 6, 3, 4)
    assert torch.equal(kv.repeat_interleave(3, dim=1), rep)


def main():
    torch.set_num_threads(1)
    check_building_blocks()
    for i, (fam, cfg) in enumerate(sorted(CASES.items())):
        run_family(fam, cfg, seed=4000 + 10 * i)


if __name__ == "__main__":
    main()

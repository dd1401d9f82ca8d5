#!/usr/bin/python3
"""Independent PyTorch references for lorakit's Llama-family Backend ops (RMSNorm, RoPE, SwiGLU, causal
grouped-query attention) and for the RoPE cos/sin tables with HF's rope_scaling of type "llama3".

The ops are written here from their definitions (HF's LlamaRMSNorm, rotate_half, repeat_kv, SiLU gating; the
papers: Zhang & Sennrich 2019, Su et al. 2021, Shazeer 2020, Ainslie et al. 2023), not from lorakit's code.
Inputs are drawn in float64, rounded to float32, and every output and gradient is computed by torch autograd in
float64 from those rounded values, then stored as F32 (loss = sum(out * g) for a random upstream gradient g, so
the gradients are the op's backward given dout = g). The RoPE tables follow HF's fp32 computation
(inv_freq, the llama3 rescaling and the angles in float32) so that lorakit's RopeTables is checked against the
tables an HF checkpoint was trained with.

Run from the repository root (re-runnable, deterministic):
    /usr/bin/python3 ci/reference/llama_ops_reference.py
Writes ci/reference/llama_ops/<case>.safetensors with make_reference.py's writer.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import write_safetensors, read_safetensors  # noqa: E402

GENERATOR = "ci/reference/llama_ops_reference.py"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llama_ops")
F64 = torch.float64


def randn(*shape, scale=1.0):
    """float64 normal values rounded to float32 (then held as float64: the stored inputs are exact)."""
    return (torch.randn(*shape, dtype=F64) * scale).to(torch.float32).to(F64)


def leaf(t):
    return t.clone().requires_grad_(True)


def meta(case, seed, **kw):
    m = {"case": case, "seed": seed, "torch": torch.__version__, "generator": GENERATOR}
    m.update(kw)
    return m


# ------------------------------------------------------------------------------------------------ the ops

def rms_norm(x, gamma, eps):
    """HF LlamaRMSNorm: x * rsqrt(mean(x^2, -1) + eps) * weight. Returns (out, rstd)."""
    rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * rstd * gamma, rstd.squeeze(-1)


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def rope(x, cos_half, sin_half, n_head):
    """x [B,T,nHead*D]; cos/sin [T,D/2] duplicated to [T,D] as HF's cat((freqs, freqs)); q*cos + rotate_half(q)*sin."""
    b, t, w = x.shape
    d = w // n_head
    xh = x.reshape(b, t, n_head, d)
    cos = torch.cat((cos_half, cos_half), dim=-1)[None, :, None, :]
    sin = torch.cat((sin_half, sin_half), dim=-1)[None, :, None, :]
    return (xh * cos + rotate_half(xh) * sin).reshape(b, t, w)


def swiglu(gate, up):
    return gate * torch.sigmoid(gate) * up


def gqa_attention(q, k, v, n_head, n_kv):
    """Causal attention with HF's repeat_kv: query head h uses kv head h // (n_head // n_kv). Returns (out, att)."""
    b, t, w = q.shape
    d = w // n_head
    qh = q.reshape(b, t, n_head, d).transpose(1, 2)                          # [B,H,T,D]
    kh = k.reshape(b, t, n_kv, d).transpose(1, 2).repeat_interleave(n_head // n_kv, dim=1)
    vh = v.reshape(b, t, n_kv, d).transpose(1, 2).repeat_interleave(n_head // n_kv, dim=1)
    scores = qh @ kh.transpose(-1, -2) / math.sqrt(d)
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    att = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)      # zero above the diagonal
    out = (att @ vh).transpose(1, 2).reshape(b, t, w)
    return out, att


# ------------------------------------------------------------------------------------------------ RoPE tables

def hf_inv_freq(head_dim, theta, scaling):
    """HF's default rotary inverse frequencies in float32, then the llama3 rescaling (float32), from the
    documented formula: wavelen = 2 pi / inv_freq; keep where wavelen < old/high, divide by factor where
    wavelen > old/low, blend (1 - s) inv/factor + s inv in between, s = (old/wavelen - low) / (high - low)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if scaling is None:
        return inv
    factor, low, high, old = scaling
    low_wavelen = old / low
    high_wavelen = old / high
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, blended, scaled)


def hf_tables(positions, inv):
    """HF: freqs = inv_freq (fp32) x positions (fp32); cos/sin in fp32. Returns [P, D/2] each."""
    freqs = positions.float()[:, None] * inv[None, :]
    return freqs.cos(), freqs.sin()


# ------------------------------------------------------------------------------------------------ cases

def rmsnorm_case(seed=1, n=6, c=20, eps=1e-6):
    torch.manual_seed(seed)
    x, gamma, g = randn(n, c, scale=1.5), 1 + 0.3 * randn(c), randn(n, c)
    xl, gl = leaf(x), leaf(gamma)
    out, rstd = rms_norm(xl, gl, eps)
    (out * g).sum().backward()
    write_safetensors(os.path.join(OUT, "rmsnorm.safetensors"),
                      {"x": x, "gamma": gamma, "out": out, "rstd": rstd, "dout": g, "dx": xl.grad,
                       "dgamma": gl.grad}, meta("rmsnorm", seed, N=n, C=c, eps=eps))


def rope_case(seed=2, b=2, t=7, n_head=3, d=8, theta=10000.0):
    torch.manual_seed(seed)
    inv = hf_inv_freq(d, theta, None)
    cos, sin = hf_tables(torch.arange(t), inv)
    x, g = randn(b, t, n_head * d), randn(b, t, n_head * d)
    xl = leaf(x)
    out = rope(xl, cos.to(F64), sin.to(F64), n_head)
    (out * g).sum().backward()
    write_safetensors(os.path.join(OUT, "rope.safetensors"),
                      {"x": x, "cos": cos, "sin": sin, "out": out, "dout": g, "dx": xl.grad},
                      meta("rope", seed, B=b, T=t, nHead=n_head, D=d, theta=theta))


def swiglu_case(seed=3, n=5, f=24):
    torch.manual_seed(seed)
    gate, up, g = randn(n, f, scale=3.0), randn(n, f), randn(n, f)
    gl, ul = leaf(gate), leaf(up)
    out = swiglu(gl, ul)
    (out * g).sum().backward()
    write_safetensors(os.path.join(OUT, "swiglu.safetensors"),
                      {"gate": gate, "up": up, "out": out, "dout": g, "dgate": gl.grad, "dup": ul.grad},
                      meta("swiglu", seed, N=n, F=f))


def gqa_case(name, seed, b, t, n_head, n_kv, d):
    torch.manual_seed(seed)
    q, k, v = randn(b, t, n_head * d), randn(b, t, n_kv * d), randn(b, t, n_kv * d)
    g = randn(b, t, n_head * d)
    ql, kl, vl = leaf(q), leaf(k), leaf(v)
    out, att = gqa_attention(ql, kl, vl, n_head, n_kv)
    (out * g).sum().backward()
    write_safetensors(os.path.join(OUT, name + ".safetensors"),
                      {"q": q, "k": k, "v": v, "out": out, "att": att, "dout": g, "dq": ql.grad, "dk": kl.grad,
                       "dv": vl.grad}, meta(name, seed, B=b, T=t, nHead=n_head, nKvHead=n_kv, D=d))


def rope_tables_case():
    """Llama 3.1's published rope settings (head_dim 128, theta 500000, llama3 factor 8, low 1, high 4,
    original 8192) at window positions and at long ones; plus the unscaled tables."""
    d, theta, scaling = 128, 500000.0, (8.0, 1.0, 4.0, 8192)
    positions = torch.tensor(list(range(16)) + [100, 1000, 4095, 8191, 8192, 20000, 131071], dtype=torch.int64)
    inv3 = hf_inv_freq(d, theta, scaling)
    cos3, sin3 = hf_tables(positions, inv3)
    inv = hf_inv_freq(d, theta, None)
    cos, sin = hf_tables(positions, inv)
    write_safetensors(os.path.join(OUT, "rope_tables.safetensors"),
                      {"positions": positions.to(F64), "inv_freq": inv, "cos": cos, "sin": sin,
                       "inv_freq_llama3": inv3, "cos_llama3": cos3, "sin_llama3": sin3},
                      meta("rope_tables", 0, head_dim=d, rope_theta=theta, factor=scaling[0],
                           low_freq_factor=scaling[1], high_freq_factor=scaling[2],
                           original_max_position_embeddings=scaling[3]))


def self_check():
    """The hand-written ops against torch built-ins where torch 1.13 has them, and the equivalence of GQA with
    MHA on explicitly repeated kv heads."""
    torch.manual_seed(99)
    x = randn(3, 4, 10)
    gate, up = randn(4, 9), randn(4, 9)
    assert torch.allclose(swiglu(gate, up), torch.nn.functional.silu(gate) * up)
    q, k, v = randn(2, 5, 12), randn(2, 5, 4), randn(2, 5, 4)
    out, _ = gqa_attention(q, k, v, 6, 2)
    kr = k.reshape(2, 5, 2, 2).repeat_interleave(3, dim=2).reshape(2, 5, 12)
    vr = v.reshape(2, 5, 2, 2).repeat_interleave(3, dim=2).reshape(2, 5, 12)
    out_mha, _ = gqa_attention(q, kr, vr, 6, 6)
    assert torch.allclose(out, out_mha)
    # RoPE is a rotation: norms of each (i, i + D/2) pair are kept
    cos, sin = hf_tables(torch.arange(4), hf_inv_freq(10, 10000.0, None))
    y = rope(x, cos.to(F64), sin.to(F64), 1)
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1))
    # llama3 with factor 1 leaves every frequency unchanged
    assert torch.equal(hf_inv_freq(64, 500000.0, (1.0, 1.0, 4.0, 8192)), hf_inv_freq(64, 500000.0, None))


def main():
    torch.set_num_threads(1)
    self_check()
    rmsnorm_case()
    rope_case()
    swiglu_case()
    gqa_case("gqa", 4, b=2, t=6, n_head=4, n_kv=2, d=5)
    gqa_case("mqa", 5, b=1, t=5, n_head=3, n_kv=1, d=4)
    gqa_case("mha", 6, b=1, t=4, n_head=2, n_kv=2, d=6)
    rope_tables_case()
    for f in sorted(os.listdir(OUT)):
        read_safetensors(os.path.join(OUT, f))
    print("wrote", len(os.listdir(OUT)), "files to", OUT)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Independent PyTorch references for lorakit's adapter and optimizer tests.

Writes small safetensors dumps (inputs, outputs, gradients) computed with torch autograd in float64 from the
formulas of docs/VARIANTS.md (sections 1, 3, 4, 5, 6, 9), stored as F32, plus PEFT-format adapter fixtures
written byte-for-byte as PEFT's save_pretrained lays them out. See ci/reference/README.md.

Run from the repository root (re-runnable, deterministic):
    /usr/bin/python3 ci/reference/make_reference.py
Needs only torch (Debian's python3-torch); the safetensors package is not used: the format is written here
with struct + json (VARIANTS.md section 9, "safetensors binary layout").
"""

import json
import math
import os
import struct
import sys

import torch

GENERATOR = "ci/reference/make_reference.py"
HERE = os.path.dirname(os.path.abspath(__file__))
DUMPS = os.path.join(HERE, "dumps")
PEFT_DIR = os.path.join(HERE, "peft")
F64 = torch.float64


# ------------------------------------------------------------------------------------------------ safetensors

def write_safetensors(path, tensors, metadata):
    """safetensors layout (huggingface/safetensors tensor.rs): u64 LE header length N, N bytes of compact JSON
    ({"__metadata__": {...}, name: {"dtype","shape","data_offsets"}, ...}) padded with spaces to a multiple of
    8, then the little-endian F32 data. Like the Rust writer, tensors are ordered by name (all have the same
    dtype alignment) and the header lists __metadata__ first, then tensors in data order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = struct.pack("<%df" % t.numel(), *t.reshape(-1).tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    atomic_write(path, struct.pack("<Q", len(text)) + text + b"".join(blobs))


def atomic_write(path, data):
    """Writes data to a temp file next to path, fsyncs it and renames it over path: an interrupted run leaves
    the committed file intact instead of truncated."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_safetensors(path):
    """Reader used for the self-check at the end (round trip of every file written)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        vals = struct.unpack("<%df" % ((e - b) // 4), raw[8 + n + b:8 + n + e])
        out[name] = torch.tensor(vals, dtype=torch.float32).reshape(info["shape"])
    return out, meta


# ------------------------------------------------------------------------------------------------ helpers

def f32(t):
    """Round to float32 and back: every reference is computed from exactly the values the F32 dump holds."""
    return t.to(torch.float32).to(F64)


def randn(*shape, scale=1.0):
    return f32(torch.randn(*shape, dtype=F64) * scale)


def leaf(t):
    return t.clone().requires_grad_(True)


def w_eff(W, fifo):
    """transpose(W, fifo): the [out,in] view of a base weight stored [out,in] (Linear) or [in,out] (Conv1D)."""
    return W.t() if fifo else W


def base_forward(x, W, b, fifo):
    """y = x W^T + b (Linear) or x W + b (Conv1D); x [N,in]."""
    return x @ w_eff(W, fifo).t() + b


def common_meta(case, variant, fifo, n, fin, fout, seed):
    return {"format": "pt", "case": case, "variant": variant, "generator": GENERATOR, "torch": torch.__version__,
            "math": "float64 autograd, stored F32", "fifo": str(fifo).lower(), "N": n, "in": fin, "out": fout,
            "seed": seed, "dropout": "0.0"}


def fmt(v):
    return repr(float(v))


# ------------------------------------------------------------------------------------------------ variants

def lora_case(case, seed, fifo=False, rslora=False, dora=False, n=6, fin=10, fout=7, r=3, alpha=6.0):
    """LoRA (section 1), rsLoRA scaling, DoRA (section 5) with the norm detached (DoRA paper 4.3 / PEFT)."""
    torch.manual_seed(seed)
    s = alpha / math.sqrt(r) if rslora else alpha / r
    x = randn(n, fin)
    W = randn(*((fin, fout) if fifo else (fout, fin)), scale=0.4)
    b = randn(fout, scale=0.1)
    A = randn(r, fin, scale=0.4)     # lora_A.weight [r,in]
    B = randn(fout, r, scale=0.4)    # lora_B.weight [out,r]  (non-zero: a non-identity adapter)
    g = randn(n, fout)               # upstream gradient dL/dy [N,out]
    tensors = {"x": x, "W": W, "b": b, "lora_A": A, "lora_B": B, "g": g}
    if dora:
        V0 = w_eff(W, fifo) + s * (B @ A)
        m = f32(V0.norm(dim=1) * (1 + 0.3 * (torch.rand(fout, dtype=F64) * 2 - 1)))  # m != ||W + sBA||
        tensors["lora_magnitude_vector"] = m

    xl, Al, Bl = leaf(x), leaf(A), leaf(B)
    lora = (xl @ Al.t()) @ Bl.t() * s                     # s (x A^T) B^T [N,out]
    if dora:
        ml = leaf(m)
        n_row = (w_eff(W, fifo) + s * (Bl @ Al)).norm(dim=1).detach()   # ||W + sBA||_row, a constant
        k = ml / n_row
        y = b + k * (xl @ w_eff(W, fifo).t() + lora)
    else:
        y = base_forward(xl, W, b, fifo) + lora
    (y * g).sum().backward()
    tensors.update({"y": y, "dx": xl.grad, "grad.lora_A": Al.grad, "grad.lora_B": Bl.grad})

    delta = s * (B @ A)                                   # [out,in]
    if dora:
        V = w_eff(W, fifo) + delta
        f = tensors["lora_magnitude_vector"] / V.norm(dim=1)
        merged_eff = f[:, None] * V
        tensors["grad.lora_magnitude_vector"] = ml.grad
        tensors["dora_norm"] = V.norm(dim=1)
    else:
        merged_eff = w_eff(W, fifo) + delta
    tensors["W_merged"] = w_eff(merged_eff, fifo)         # back to the stored layout
    # merged forward equals the unmerged one (no dropout): a self-check of the reference
    assert torch.allclose(base_forward(x, tensors["W_merged"], b, fifo), y.detach(), atol=1e-12)

    meta = common_meta(case, "dora" if dora else "lora", fifo, n, fin, fout, seed)
    meta.update({"r": r, "alpha": fmt(alpha), "scaling": fmt(s), "use_rslora": str(rslora).lower(),
                 "use_dora": str(dora).lower(),
                 "trainable": "lora_A,lora_B" + (",lora_magnitude_vector" if dora else "")})
    return tensors, meta


def vera_case(case, seed, n=6, fin=10, fout=7, r=4, in_max=13, out_max=9, fifo=False):
    """VeRA (section 4): y = x W^T + b + λb ⊙ ((λd ⊙ (x A_l^T)) B_l^T), A_l = vera_A[:, :in], B_l = vera_B[:out, :]."""
    torch.manual_seed(seed)
    x = randn(n, fin)
    W = randn(*((fin, fout) if fifo else (fout, fin)), scale=0.4)
    b = randn(fout, scale=0.1)
    bound_a, bound_b = math.sqrt(6 / in_max), math.sqrt(6 / r)       # Kaiming-uniform, gain sqrt 2
    vA = f32((torch.rand(r, in_max, dtype=F64) * 2 - 1) * bound_a)  # shared vera_A [r,in_max]
    vB = f32((torch.rand(out_max, r, dtype=F64) * 2 - 1) * bound_b)  # shared vera_B [out_max,r]
    lb = randn(fout, scale=0.5)   # vera_lambda_b [out] (non-zero)
    ld = randn(r, scale=0.5)      # vera_lambda_d [r]
    g = randn(n, fout)
    A_l, B_l = vA[:, :fin], vB[:fout, :]
    xl, lbl, ldl = leaf(x), leaf(lb), leaf(ld)
    y = base_forward(xl, W, b, fifo) + lbl * ((ldl * (xl @ A_l.t())) @ B_l.t())
    (y * g).sum().backward()
    delta = (lb[:, None] * B_l) @ (ld[:, None] * A_l)     # [out,in]
    tensors = {"x": x, "W": W, "b": b, "vera_A": vA, "vera_B": vB, "vera_lambda_b": lb, "vera_lambda_d": ld,
               "g": g, "y": y, "dx": xl.grad, "grad.vera_lambda_b": lbl.grad, "grad.vera_lambda_d": ldl.grad,
               "W_merged": W + w_eff(delta, fifo)}
    assert torch.allclose(base_forward(x, tensors["W_merged"], b, fifo), y.detach(), atol=1e-12)
    meta = common_meta(case, "vera", fifo, n, fin, fout, seed)
    meta.update({"r": r, "in_max": in_max, "out_max": out_max, "scaling": fmt(1.0),
                 "trainable": "vera_lambda_b,vera_lambda_d"})
    return tensors, meta


def adalora_case(case, seed, n=6, fin=10, fout=7, init_r=4, alpha=8.0, fifo=False):
    """AdaLoRA (section 6): y = x W^T + b + (x (A ⊙ E)^T B^T) · alpha/(init_r + 1e-5); E [r,1] broadcast over A's columns."""
    torch.manual_seed(seed)
    s = alpha / (init_r + 1e-5)
    x = randn(n, fin)
    W = randn(*((fin, fout) if fifo else (fout, fin)), scale=0.4)
    b = randn(fout, scale=0.1)
    A = randn(init_r, fin, scale=0.4)   # lora_A (Q) [r,in]
    B = randn(fout, init_r, scale=0.4)  # lora_B (P) [out,r]
    E = randn(init_r, 1, scale=0.5)     # lora_E (Λ) [r,1]  (non-zero)
    g = randn(n, fout)
    xl, Al, Bl, El = leaf(x), leaf(A), leaf(B), leaf(E)
    y = base_forward(xl, W, b, fifo) + (xl @ (Al * El).t()) @ Bl.t() * s
    (y * g).sum().backward()
    delta = (B @ (A * E)) * s
    tensors = {"x": x, "W": W, "b": b, "lora_A": A, "lora_B": B, "lora_E": E, "g": g, "y": y, "dx": xl.grad,
               "grad.lora_A": Al.grad, "grad.lora_B": Bl.grad, "grad.lora_E": El.grad,
               "W_merged": W + w_eff(delta, fifo)}
    assert torch.allclose(base_forward(x, tensors["W_merged"], b, fifo), y.detach(), atol=1e-12)
    meta = common_meta(case, "adalora", fifo, n, fin, fout, seed)
    meta.update({"r": init_r, "init_r": init_r, "alpha": fmt(alpha), "scaling": fmt(s),
                 "trainable": "lora_A,lora_B,lora_E"})
    return tensors, meta


# ------------------------------------------------------------------------------------------------ optimizers

def adamw_case(seed, steps=3, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, wd=0.1):
    """torch.optim.AdamW on two tensors (a [7,3] matrix and a [7] vector), given gradients per step."""
    torch.manual_seed(seed)
    shapes = {"w2d": (7, 3), "w1d": (7,)}
    params = {k: torch.nn.Parameter(randn(*v, scale=0.5)) for k, v in shapes.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=lr, betas=betas, eps=eps, weight_decay=wd)
    tensors = {}
    for k, p in params.items():
        tensors["param.%s.step0" % k] = p.detach().clone()
    for t in range(1, steps + 1):
        for k, p in params.items():
            gr = randn(*shapes[k])
            p.grad = gr.clone()
            tensors["grad.%s.step%d" % (k, t)] = gr
        opt.step()
        for k, p in params.items():
            tensors["param.%s.step%d" % (k, t)] = p.detach().clone()
    for k, p in params.items():
        st = opt.state[p]
        tensors["exp_avg.%s.step%d" % (k, steps)] = st["exp_avg"].clone()
        tensors["exp_avg_sq.%s.step%d" % (k, steps)] = st["exp_avg_sq"].clone()
    meta = {"format": "pt", "case": "adamw", "generator": GENERATOR, "torch": torch.__version__,
            "math": "float64 torch.optim.AdamW, stored F32", "seed": seed, "steps": steps, "lr": fmt(lr),
            "beta1": fmt(betas[0]), "beta2": fmt(betas[1]), "eps": fmt(eps), "weight_decay": fmt(wd),
            "params": "w2d,w1d",
            "rule": "p <- p(1 - lr wd); m,v EMA; p <- p - lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)"}
    return tensors, meta


def lorafa_case(seed, fout=7, fin=10, r=3, alpha=6.0, lr=5e-2, betas=(0.9, 0.999), eps=1e-6, wd=0.2):
    """LoRA-FA (section 3): A frozen; g~ = (1/s^2) grad_B pinv(A A^T + 1e-8 I), then an Adam step on B.
    Two update rules are stored: B.stepK with torch.optim.AdamW (decay first, eps on the bias-corrected sqrt v)
    and B_peft.stepK with PEFT's LoraFAOptimizer (HF AdamW: step = lr sqrt(1-b2^t)/(1-b1^t), eps on the raw
    sqrt v, decay B <- B (1 - lr wd) after the Adam step). PEFT may run the projection under bf16 autocast; the
    reference is in float64. lr·wd = 0.01 is large on purpose: the two rules then differ by ~10x the F32
    tolerance, so a test can tell which one an implementation follows."""
    torch.manual_seed(seed)
    s = alpha / r
    A = randn(r, fin, scale=0.4)
    B0 = randn(fout, r, scale=0.4)
    grads = [randn(fout, r), randn(fout, r)]
    proj = torch.linalg.pinv(A @ A.t() + 1e-8 * torch.eye(r, dtype=F64))
    tensors = {"lora_A": A, "lora_B.step0": B0}
    # torch AdamW on the projected gradient
    Bt = torch.nn.Parameter(B0.clone())
    opt = torch.optim.AdamW([Bt], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    # PEFT LoraFAOptimizer rule
    Bp = B0.clone()
    m = torch.zeros_like(B0)
    v = torch.zeros_like(B0)
    for t, gB in enumerate(grads, start=1):
        gt = (1.0 / s ** 2) * (gB @ proj)
        tensors["grad.lora_B.step%d" % t] = gB
        tensors["gtilde.step%d" % t] = gt
        Bt.grad = gt.clone()
        opt.step()
        tensors["lora_B.step%d" % t] = Bt.detach().clone()
        m = betas[0] * m + (1 - betas[0]) * gt
        v = betas[1] * v + (1 - betas[1]) * gt * gt
        step = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
        Bp = Bp - step * m / (v.sqrt() + eps)
        Bp = Bp * (1 - lr * wd)
        tensors["lora_B_peft.step%d" % t] = Bp.clone()
    meta = {"format": "pt", "case": "lorafa", "generator": GENERATOR, "torch": torch.__version__,
            "math": "float64, stored F32", "seed": seed, "r": r, "alpha": fmt(alpha), "scaling": fmt(s),
            "lr": fmt(lr), "beta1": fmt(betas[0]), "beta2": fmt(betas[1]), "eps": fmt(eps), "weight_decay": fmt(wd),
            "steps": 2, "projection": "gtilde = (1/s^2) grad_B pinv(A A^T + 1e-8 I)",
            "lora_B.stepK": "torch.optim.AdamW on gtilde",
            "lora_B_peft.stepK": "PEFT LoraFAOptimizer (HF AdamW, decay after the step)"}
    return tensors, meta


def loraplus_case(lr=2e-4, ratio=16.0, lr_embedding=1e-6):
    """LoRA+ (section 2): PEFT's 4 groups [groupA, embedding, groupB, groupB_no_decay] and their learning rates."""
    lrs = [lr, lr_embedding, lr * ratio, lr * ratio]
    tensors = {"group_lrs": torch.tensor(lrs, dtype=F64)}
    meta = {"format": "pt", "case": "loraplus", "generator": GENERATOR, "torch": torch.__version__,
            "lr": fmt(lr), "loraplus_lr_ratio": fmt(ratio), "loraplus_lr_embedding": fmt(lr_embedding),
            "groups": "groupA,embedding,groupB,groupB_no_decay",
            "group_lrs": ",".join(fmt(v) for v in lrs),
            "assignment": json.dumps({"lora_A": "groupA", "lora_B": "groupB", "lora_magnitude_vector": "groupB",
                                      "lora_embedding_A": "embedding", "lora_embedding_B": "embedding",
                                      "bias": "groupB_no_decay"}, sort_keys=True)}
    return tensors, meta


# ------------------------------------------------------------------------------------------------ PEFT fixtures

PEFT_VERSION = "0.19.1"   # the key set below is that release's LoraConfig.to_dict(); see README
ATTN = "transformer.h.0.attn.c_attn"   # GPT-2 Conv1D: W [in,out] (fan_in_fan_out)
FC = "transformer.h.0.mlp.c_fc"        # a torch Linear here: W [out,in]
MODULES = [(ATTN, True, 6, 18), (FC, False, 6, 24)]   # (name, fifo, in, out)

PEFT_BASE = {"auto_mapping": None, "base_model_name_or_path": None, "inference_mode": True,
             "peft_version": PEFT_VERSION, "revision": None, "task_type": "CAUSAL_LM"}


def lora_config_dict(r, alpha, use_dora):
    d = dict(PEFT_BASE)
    d.update({"alora_invocation_tokens": None, "alpha_pattern": {}, "arrow_config": None, "bias": "none",
              "corda_config": None, "ensure_weight_tying": False, "eva_config": None, "exclude_modules": None,
              "fan_in_fan_out": True, "init_lora_weights": False, "layer_replication": None, "layers_pattern": None,
              "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha, "lora_bias": False,
              "lora_dropout": 0.0, "lora_ga_config": None, "megatron_config": None,
              "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA",
              "qalora_group_size": 16, "r": r, "rank_pattern": {}, "target_modules": ["c_fc", "c_attn"],
              "target_parameters": None, "trainable_token_indices": None, "use_bdlora": None,
              "use_dora": use_dora, "use_qalora": False, "use_rslora": False})
    return d


def vera_config_dict(r):
    d = dict(PEFT_BASE)
    d.update({"bias": "none", "d_initial": 0.1, "fan_in_fan_out": True, "init_weights": False,
              "layers_pattern": None, "layers_to_transform": None, "modules_to_save": None, "peft_type": "VERA",
              "projection_prng_key": 0, "r": r, "save_projection": True, "target_modules": ["c_fc", "c_attn"],
              "vera_dropout": 0.0})
    return d


def adalora_config_dict(init_r, alpha, rank_pattern):
    d = lora_config_dict(8, alpha, False)   # AdaLoRA ignores r (PEFT default 8 stays in the file)
    d.update({"peft_type": "ADALORA", "init_r": init_r, "target_r": 2, "tinit": 0, "tfinal": 0, "deltaT": 1,
              "beta1": 0.85, "beta2": 0.85, "orth_reg_weight": 0.5, "total_step": 100,
              "rank_pattern": rank_pattern})
    return d


def write_peft_fixture(case, seed, config, adapter, per_module_delta, scalars):
    """adapter_config.json as PEFT writes it (json.dumps(indent=2, sort_keys=True)), adapter_model.safetensors
    with PEFT's keys and metadata {"format": "pt"}, and expected.safetensors with base weights, x and outputs."""
    out = os.path.join(PEFT_DIR, case)
    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, "adapter_config.json"), json.dumps(config, indent=2, sort_keys=True).encode("utf-8"))
    write_safetensors(os.path.join(out, "adapter_model.safetensors"), adapter, {"format": "pt"})
    torch.manual_seed(seed + 1000)
    n = 5
    x = randn(n, MODULES[0][2])
    exp = {"x": x}
    meta = {"format": "pt", "case": case, "generator": GENERATOR, "torch": torch.__version__,
            "modules": ",".join(m[0] for m in MODULES), "peft_type": config["peft_type"], "N": n}
    for name, fifo, fin, fout in MODULES:
        W = randn(*((fin, fout) if fifo else (fout, fin)), scale=0.4)
        b = randn(fout, scale=0.1)
        y_base = base_forward(x, W, b, fifo)
        y, W_merged = per_module_delta(name, x, W, b, fifo)
        exp.update({name + ".weight": W, name + ".bias": b, name + ".y_base": y_base, name + ".y": y,
                    name + ".W_merged": W_merged})
        meta[name + ".fifo"] = str(fifo).lower()
        meta[name + ".in"] = fin
        meta[name + ".out"] = fout
        for k, v in scalars.get(name, {}).items():
            meta[name + "." + k] = v
    write_safetensors(os.path.join(out, "expected.safetensors"), exp, meta)


def peft_fixtures():
    pre = "base_model.model."
    written = []

    # LoRA and DoRA: r=4, alpha=8 (s=2)
    for case, dora, seed in (("lora", False, 301), ("dora", True, 302)):
        torch.manual_seed(seed)
        r, alpha = 4, 8
        s = alpha / r
        ad, tens = {}, {}
        for name, fifo, fin, fout in MODULES:
            A, B = randn(r, fin, scale=0.4), randn(fout, r, scale=0.4)
            ad[pre + name + ".lora_A.weight"] = A
            ad[pre + name + ".lora_B.weight"] = B
            tens[name] = [A, B]
            if dora:
                m = f32(torch.rand(fout, dtype=F64) + 0.5)
                ad[pre + name + ".lora_magnitude_vector"] = m   # '.weight' stripped on disk (section 9)
                tens[name].append(m)

        def delta(name, x, W, b, fifo, tens=tens, dora=dora, s=s):
            A, B = tens[name][0], tens[name][1]
            V = w_eff(W, fifo) + s * (B @ A)
            if dora:
                k = tens[name][2] / V.norm(dim=1)
                y = b + k * (x @ w_eff(W, fifo).t() + s * (x @ A.t()) @ B.t())
                merged = k[:, None] * V
            else:
                y = base_forward(x, W, b, fifo) + s * (x @ A.t()) @ B.t()
                merged = V
            return y, w_eff(merged, fifo)

        scal = {m[0]: {"scaling": fmt(s), "r": r} for m in MODULES}
        write_peft_fixture(case, seed, lora_config_dict(r, alpha, dora), ad, delta, scal)
        written.append(case)

    # VeRA: r=4, shared vera_A [r, in_max], vera_B [out_max, r]
    torch.manual_seed(303)
    r = 4
    in_max = max(m[2] for m in MODULES)
    out_max = max(m[3] for m in MODULES)
    vA = f32((torch.rand(r, in_max, dtype=F64) * 2 - 1) * math.sqrt(6 / in_max))
    vB = f32((torch.rand(out_max, r, dtype=F64) * 2 - 1) * math.sqrt(6 / r))
    ad = {"base_model.vera_A": vA, "base_model.vera_B": vB}
    lam = {}
    for name, fifo, fin, fout in MODULES:
        lb, ld = randn(fout, scale=0.5), randn(r, scale=0.5)
        ad[pre + name + ".vera_lambda_b"] = lb
        ad[pre + name + ".vera_lambda_d"] = ld
        lam[name] = (lb, ld)

    def vdelta(name, x, W, b, fifo):
        lb, ld = lam[name]
        fin, fout = (W.shape[0], W.shape[1]) if fifo else (W.shape[1], W.shape[0])
        A_l, B_l = vA[:, :fin], vB[:fout, :]
        y = base_forward(x, W, b, fifo) + lb * ((ld * (x @ A_l.t())) @ B_l.t())
        return y, W + w_eff((lb[:, None] * B_l) @ (ld[:, None] * A_l), fifo)

    scal = {m[0]: {"scaling": fmt(1.0), "r": r} for m in MODULES}
    write_peft_fixture("vera", 303, vera_config_dict(r), ad, vdelta, scal)
    written.append("vera")

    # AdaLoRA: init_r=4, alpha=8; 'adalora' before any allocation (rank_pattern null, full rank), 'adalora_pruned'
    # after one (rank_pattern set; A/E rows and B columns of the pruned triplets dropped on save, section 6).
    for case, seed, pattern in (("adalora", 304, None),
                                ("adalora_pruned", 305, {ATTN + ".lora_E": [True, False, True, True],
                                                         FC + ".lora_E": [False, True, False, True]})):
        torch.manual_seed(seed)
        init_r, alpha = 4, 8
        s = alpha / (init_r + 1e-5)
        ad, tens, scal = {}, {}, {}
        for name, fifo, fin, fout in MODULES:
            A, B, E = randn(init_r, fin, scale=0.4), randn(fout, init_r, scale=0.4), randn(init_r, 1, scale=0.5)
            if pattern is not None:
                keep = torch.tensor(pattern[name + ".lora_E"])
                A, E, B = A[keep], E[keep], B[:, keep]
            ad[pre + name + ".lora_A"] = A
            ad[pre + name + ".lora_B"] = B
            ad[pre + name + ".lora_E"] = E
            tens[name] = (A, B, E)
            scal[name] = {"scaling": fmt(s), "r": A.shape[0], "init_r": init_r}

        def adelta(name, x, W, b, fifo, tens=tens, s=s):
            A, B, E = tens[name]
            y = base_forward(x, W, b, fifo) + (x @ (A * E).t()) @ B.t() * s
            return y, W + w_eff(B @ (A * E) * s, fifo)

        write_peft_fixture(case, seed, adalora_config_dict(init_r, alpha, pattern), ad, adelta, scal)
        written.append(case)
    return written


# ------------------------------------------------------------------------------------------------ main

def main():
    torch.set_default_dtype(F64)
    cases = {
        "lora": lambda: lora_case("lora", 101),
        "lora_fifo": lambda: lora_case("lora_fifo", 102, fifo=True),
        "lora_rslora": lambda: lora_case("lora_rslora", 103, rslora=True, r=4, alpha=8.0),
        "dora": lambda: lora_case("dora", 104, dora=True),
        "dora_fifo": lambda: lora_case("dora_fifo", 105, fifo=True, dora=True),
        "vera": lambda: vera_case("vera", 106),
        "adalora": lambda: adalora_case("adalora", 107),
        "adamw": lambda: adamw_case(201),
        "lorafa": lambda: lorafa_case(202),
        "loraplus": lambda: loraplus_case(),
    }
    total = 0
    for case, make in cases.items():
        tensors, meta = make()
        path = os.path.join(DUMPS, case + ".safetensors")
        write_safetensors(path, tensors, meta)
        back, meta_back = read_safetensors(path)
        assert meta_back["case"] == case and set(back) == set(tensors), case
        for k, v in tensors.items():
            assert torch.equal(back[k], v.detach().to(torch.float32)), (case, k)
        total += os.path.getsize(path)
        print("%-12s %6d bytes  %s" % (case, os.path.getsize(path), ",".join(sorted(tensors))))
    for case in peft_fixtures():
        d = os.path.join(PEFT_DIR, case)
        for f in ("adapter_model.safetensors", "expected.safetensors"):
            read_safetensors(os.path.join(d, f))
            total += os.path.getsize(os.path.join(d, f))
        print("peft/%-14s %s" % (case, ", ".join(sorted(read_safetensors(os.path.join(d, "adapter_model.safetensors"))[0]))))
    print("total %d bytes, torch %s" % (total, torch.__version__))
    assert total < 1_000_000
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The summary of one ci/gpu-check.sh pass: reads OUT/steps.tsv (name, status, seconds, detail per finished step),
OUT/junit/*.xml and the JSON files the steps wrote into OUT, writes OUT/summary.json (atomically) and prints the
table: the steps (passed / failed / skipped with the reason / not run (budget)), then what they measured.
Exit 1 when a step failed, else 0.

    python3 ci/gpu-check-summary.py OUT "pass correctness"
"""
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

STATUSES = ("passed", "failed", "skipped", "not run (budget)")


def load(out, name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def contract(out):
    """Tests per backend (the parameterized invocation names carry it: "[3] cuda-ffm") from the JUnit XML reports."""
    reports = glob.glob(os.path.join(out, "junit", "*.xml"))
    if not reports:
        return None
    per, failures = {}, []
    for rep in reports:
        try:
            root = ET.parse(rep).getroot()
        except ET.ParseError:
            continue   # a report cut by a timeout
        for tc in root.iter("testcase"):
            name = tc.get("name", "")
            out_el = tc.find("system-out")
            disp = re.findall(r"display-name: (.*)", out_el.text or "") if out_el is not None else []
            last = disp[-1].split(" > ")[-1] if disp else name
            m = re.search(r"(cpu-naive|cpu|opencl|cuda-ffm|cuda-jcuda)\b", last)
            cls = tc.get("classname", "")
            if m:
                be = m.group(1)
            elif ".gpu.jcuda." in cls:
                be = "cuda-jcuda"
            elif ".gpu.ffm." in cls:
                be = "cuda-ffm"
            elif ".gpu.cuda." in cls or ".gpu.blas." in cls:
                be = "cuda (device, graph, interop, cuBLAS, fake driver)"
            else:
                be = "other"
            st = per.setdefault(be, {"passed": 0, "failed": 0, "skipped": 0})
            bad = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
            if bad is not None:
                st["failed"] += 1
                failures.append({"class": cls, "test": name, "message": (bad.get("message") or "")[:400]})
            elif tc.find("skipped") is not None:
                st["skipped"] += 1
            else:
                st["passed"] += 1
    return {"per_backend": per, "failures": failures[:200]}


def measured(out):
    """(what, value, note) rows of what the steps measured."""
    rows = []
    for b in ("ffm", "jcuda"):
        r = load(out, "fast_tier_%s.json" % b)
        if r and r.get("cases"):
            cases = r["cases"]
            rows.append(("fast tier " + b, "%d/%d ok" % (sum(1 for c in cases if c.get("ok")), len(cases)), ""))
        t = load(out, "train_%s.json" % b)
        if t and t.get("methods"):
            ok = [m for m in t["methods"] if m.get("ok")]
            rows.append(("training vs cpu " + b, "%d/%d methods ok" % (len(ok), len(t["methods"])),
                         ", ".join(m["method"] for m in t["methods"] if not m.get("ok"))))
    micro = load(out, "micro.json") or {}
    for row in micro.get("rows", []):
        if "ratio" in row or "share_of_copy" in row:
            v = row.get("ratio", row.get("share_of_copy"))
            tgt = row.get("target")
            rows.append((row["op"], "%.3f" % v, ("target %s %s" % (tgt, "met" if row.get("met") else "MISSED")) if tgt else ""))
    for row in (load(out, "peer_layers.json") or {}).get("rows", []):
        if "fwd_ratio_vs_gemm" in row:
            rows.append(("peft " + row["method"], "fwd %.3f, fwd+bwd %.3f" % (row["fwd_ratio_vs_gemm"],
                                                                           row["fwd_bwd_ratio_vs_gemms"]), "x frozen GEMMs"))
    c_us = (load(out, "launch_c.json") or {}).get("launch_us_median")
    for b in ("jcuda", "ffm"):
        lo = load(out, "launch_%s.json" % b) or {}
        if "launch_us_median" in lo:
            ratio = lo["launch_us_median"] / c_us if c_us else None
            rows.append(("launch " + b, "%.2f us" % lo["launch_us_median"] + (" (%.2f x C)" % ratio if ratio else ""),
                         "target <= 1.2 x C"))
    if c_us:
        rows.append(("launch C", "%.2f us" % c_us, ""))
    g = load(out, "gpt2_lorakit.json") or {}
    lk = g.get("tokens_per_s")
    if lk:
        mem = g.get("peak_device_bytes") or g.get("device_memory_bytes")
        note = ("peak %.0f MiB" % (mem / 2**20)) if mem else ""
        if g.get("allocations_per_step") is not None:
            note += ", %.1f device allocations per step" % g["allocations_per_step"]
        rows.append(("gpt2 lorakit", "%.0f tok/s" % lk, note))
    for mode in ("eager", "compile"):
        for row in (load(out, "peer_gpt2_%s.json" % mode) or {}).get("rows", []):
            if "tokens_per_s" in row:
                rows.append(("gpt2 peft " + row["mode"], "%.0f tok/s" % row["tokens_per_s"],
                             ("lorakit %.2f x (target %s)" % (lk / row["tokens_per_s"], "1.5" if row["mode"] == "eager" else "1.0"))
                             if lk else ""))
    inter = load(out, "interop.json")
    if inter:
        rows.append(("interop", "ok" if inter.get("ok") else "FAIL", "max |diff| %.2e, adapter moves %.2e"
                     % (inter.get("max_abs_diff", float("nan")), inter.get("adapter_moves_logits_by", float("nan")))))
    return rows


def main():
    out, what = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    steps = []
    with open(os.path.join(out, "steps.tsv")) as f:
        for line in f:
            if line.strip():
                name, status, secs, detail = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
                steps.append({"step": name, "status": status, "seconds": int(secs or 0), "detail": detail})
    con = contract(out)
    rows = measured(out)
    if con:
        for be, st in sorted(con["per_backend"].items()):
            rows.insert(0, ("junit " + be, "%d passed, %d failed, %d skipped" % (st["passed"], st["failed"], st["skipped"]), ""))
    counts = {s: sum(1 for x in steps if x["status"] == s) for s in STATUSES}
    failed = counts["failed"]
    summary = {"what": what, "ok": failed == 0, "counts": counts, "steps": steps, "contract": con,
               "measured": [dict(zip(("what", "value", "note"), r)) for r in rows]}
    tmp = os.path.join(out, "summary.json.tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(tmp, os.path.join(out, "summary.json"))

    w = max([len(s["step"]) for s in steps] + [len(r[0]) for r in rows] + [10])
    print("%-*s  %-18s %5s  %s" % (w, "step", "status", "s", "detail"))
    for s in steps:
        print("%-*s  %-18s %5d  %s" % (w, s["step"], s["status"], s["seconds"], s["detail"]))
    if rows:
        print()
        print("%-*s  %-30s  %s" % (w, "measured", "value", "note"))
        for r in rows:
            print("%-*s  %-30s  %s" % (w, r[0], r[1], r[2]))
    print("GPU check %s: %s" % (what, ", ".join("%d %s" % (counts[s], s) for s in STATUSES)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

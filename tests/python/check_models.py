#!/usr/bin/python3
"""Validate every .onnx file in a folder with the ONNX reference checker.

    /usr/bin/python3 tests/python/check_models.py OUTDIR

Runs onnx.checker.check_model(model, full_check=True) on each OUTDIR/*.onnx (written by
examples/export_check): the structural checks plus strict shape inference, so a wrong attribute,
an IR/opset mismatch or a shape that does not add up is caught by the ONNX project's own code,
not by ours. Prints one line per file and a final "N passed, N failed" line; exits 1 if any file
failed (or none was found), 2 on a usage error.

Written for Debian's python3-onnx 1.12 (the interpreter is /usr/bin/python3, not a virtualenv).
"""
import glob
import os
import sys


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        import onnx
        import onnx.checker
    except ImportError as e:
        print(f"check_models.py: cannot import onnx ({e}); install Debian's python3-onnx", file=sys.stderr)
        return 1

    paths = sorted(glob.glob(os.path.join(argv[1], "*.onnx")))
    if not paths:
        print(f"check_models.py: no .onnx files in {argv[1]}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    print(f"onnx {onnx.__version__}: onnx.checker.check_model(full_check=True) on {len(paths)} file(s) in {argv[1]}")
    passed = failed = 0
    for path in paths:
        name = os.path.basename(path)
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # checker, shape inference and decode errors alike: report and go on
            failed += 1
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"FAIL {name}: {type(e).__name__}: {first}")
            continue
        passed += 1
        opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"PASS {name}: IR {model.ir_version}, opset {opsets}, {len(model.graph.node)} nodes "
              f"({' '.join(ops)})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""``radedge models``, ``inspect``, ``keygen`` and ``sign``: what a bundle holds, verified, and
how bundles are sealed."""

from __future__ import annotations

import argparse

from .._terminal import ExitStatus
from .._terminal import print_json
from ..errors import RadedgeError
from ._common import Console, add_common_options, add_trust_option, log


def add_parsers(commands) -> None:
    inspect = commands.add_parser("inspect", help="verify a bundle and describe it")
    inspect.add_argument("bundle", nargs="?", default=None,
                         help="bundle directory or .radedge file (default: the bundled demo model)")
    inspect.add_argument("--json", action="store_true",
                         help="print one JSON document instead of text: the bundle's record (as models --json), "
                              "its input, preprocessing, each precision's gate and the provenance")
    add_trust_option(inspect)
    add_common_options(inspect)
    inspect.set_defaults(func=inspect_command)

    models = commands.add_parser("models", help="list the bundled models: heads, flags and the images each applies to")
    models.add_argument("--model", action="append", default=None, metavar="BUNDLE",
                        help="list these bundles instead (repeatable)")
    models.add_argument("--json", action="store_true", help="one JSON list instead of text")
    add_trust_option(models)
    add_common_options(models)
    models.set_defaults(func=models_command)

    keygen = commands.add_parser("keygen", help="make an Ed25519 key pair for signing bundles")
    keygen.add_argument("--out", required=True, metavar="KEY", help="private key file; the public key goes to KEY.pub")
    add_common_options(keygen)
    keygen.set_defaults(func=keygen_command)

    sign = commands.add_parser("sign", help="verify a bundle and sign its manifest")
    sign.add_argument("bundle", metavar="BUNDLE", help="bundle directory or .radedge file")
    sign.add_argument("--key", required=True, metavar="KEY", help="private key file written by radedge keygen")
    add_common_options(sign)
    sign.set_defaults(func=sign_command)


def inspect_command(args: argparse.Namespace) -> int:
    from ..bundle import load_bundle

    console = Console(args)
    log.debug("verifying %s", args.bundle or "the bundled demo model")
    try:
        bundle = load_bundle(args.bundle, trusted_keys=args.trust)
    except RadedgeError as exc:
        return console.fail(exc)
    log.debug("verified %s: manifest, %d file checksums, signature %s", bundle.location,
              len(bundle.manifest.files), bundle.signature.state)
    manifest = bundle.manifest
    if args.json:
        print_json(inspect_record(bundle))
        return ExitStatus.OK
    pre = manifest.preprocess
    lines = [
        f"{manifest.model_id} {manifest.model_version}: {manifest.description}",
        f"  bundle     {bundle.location} (sha256 {bundle.digest}), checksums verified",
        f"  signature  {_signature_line(bundle)}",
        f"  terms      {f'{manifest.license.id}: {manifest.license.terms}' if manifest.license else 'none given'}",
        f"  input      {manifest.input_name} {list(manifest.input_shape)} {pre.dtype}",
        f"  preprocess {pre.resize}, mean {list(pre.mean)}, std {list(pre.std)}, VOI {manifest.intensity.voi}",
        *(f"  {line}" for line in describe(manifest)),
        *(f"  {line}" for line in _precision_lines(manifest)),
    ]
    for line in lines:
        console.result(line)
    return ExitStatus.OK


def inspect_record(bundle) -> dict:
    """What ``inspect --json`` prints: the ``models --json`` record, with the input, the
    preprocessing, each precision's gate figures and the provenance."""
    manifest = bundle.manifest
    pre = manifest.preprocess
    return {
        **model_record(bundle),
        "checksums_verified": True,
        "input": {"name": manifest.input_name, "shape": list(manifest.input_shape), "dtype": pre.dtype},
        "preprocess": {"resize": pre.resize, "mean": list(pre.mean), "std": list(pre.std),
                       "voi": str(manifest.intensity.voi)},
        "gates": {name: precision.gate for name, precision in manifest.precisions.items()},
        "provenance": manifest.provenance,
    }


def _signature_line(bundle) -> str:
    """Who sealed the bundle, worded so an unsigned or unchecked one stands out."""
    signature = bundle.signature
    if signature.state == "unsigned":
        return (f"UNSIGNED: nothing proves who sealed this bundle; sign it with "
                f"radedge sign {bundle.location} --key KEY")
    if signature.state == "not checked":
        return f"{signature.describe()} (pass --trust KEY.pub to check it)"
    return signature.describe()


def _precision_lines(manifest) -> list[str]:
    """One line per precision the bundle carries: its file and the gate figures it passed."""
    lines = ["precisions"]
    for name, precision in manifest.precisions.items():
        gate = _gate_summary(precision.gate)
        lines.append(f"  {name:<8} {precision.file}" + (f"  {gate}" if gate else ""))
    return lines


def _gate_summary(gate: dict) -> str:
    """``passed`` and each head's figures, compactly; the figures are printed as the gate recorded them."""
    parts = []
    if "passed" in gate:
        verdict = "gate passed" if gate["passed"] is True else "gate NOT passed"
        if "reference" in gate and "images" in gate:
            verdict += f" against {gate['reference']} on {gate['images']} images"
        if isinstance(gate.get("flag_changes"), (int, float)):
            verdict += f", flags changed on {gate['flag_changes']:.1%}"
        parts.append(verdict)
    heads = gate.get("heads", {})
    for head, figures in (heads.items() if isinstance(heads, dict) else ()):
        if isinstance(figures, dict):
            parts.append(f"{head}: " + ", ".join(f"{metric} {_figure(value)}" for metric, value in figures.items()))
        else:
            parts.append(f"{head}: {_figure(figures)}")
    return "; ".join(parts)


def _figure(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} {_figure(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_figure(item) for item in value) + "]"
    return str(value)


def keygen_command(args: argparse.Namespace) -> int:
    from ..bundle import generate_key

    console = Console(args)
    log.debug("writing an Ed25519 key pair to %s and %s.pub", args.out, args.out)
    try:
        key_id = generate_key(args.out)
    except RadedgeError as exc:
        return console.fail(exc)
    except OSError as exc:
        console.fail(exc)
        return ExitStatus.OUTPUT
    console.result(f"key {key_id}")
    console.info(f"  private key  {args.out} (mode 0600: keep it where bundles are signed, never on a console)")
    console.info(f"  public key   {args.out}.pub (for consoles: radedge run --trust {args.out}.pub)")
    return ExitStatus.OK


def sign_command(args: argparse.Namespace) -> int:
    from ..bundle import sign_bundle

    console = Console(args)
    log.debug("verifying %s, then signing its manifest with %s", args.bundle, args.key)
    try:
        key_id = sign_bundle(args.bundle, args.key)
    except RadedgeError as exc:
        return console.fail(exc)
    except OSError as exc:
        console.fail(exc)
        return ExitStatus.OUTPUT
    console.result(f"signed {args.bundle} with key {key_id}")
    return ExitStatus.OK


def describe(manifest) -> list[str]:
    """What a model reads, its heads and flags and where it applies, one line each."""
    lines = []
    if manifest.input_region is not None:
        region = manifest.input_region
        lines.append(f"region     what head {region.head!r} of {region.model} finds, grown by {region.margin:g} of its size")
    for head in manifest.heads:
        shown = " (shown first)" if head.name == manifest.display_head else ""
        lines.append(f"head       {head.name}: {head.kind}, {head.activation} over {list(head.labels)}{shown}")
        for rule in head.flags:
            also = "".join(f" and {c.head}/{c.label} >= {c.threshold}" for c in rule.requires)
            lines.append(f"  flag     {rule.code} when {_condition(head.kind, rule.label, rule.threshold)}{also}: {rule.title}")
    scope = manifest.scope
    lines.append(
        f"scope      modalities {list(scope.modalities) or 'any'}, intent {list(scope.presentation_intents) or 'any'}, "
        f"body parts {list(scope.body_parts) or 'any'}, SOP classes {list(scope.sop_classes) or 'any'}"
    )
    return lines


def models_command(args: argparse.Namespace) -> int:
    """List the bundled models (or the bundles named), verified, with heads, scope and flags."""
    from ..bundle import bundled_bundle_paths, load_bundle
    from ..bundle.signing import load_trusted_keys

    console = Console(args)
    try:
        trusted = None if args.trust is None else list(load_trusted_keys(args.trust).values())
    except RadedgeError as exc:
        return console.fail(exc)
    paths = args.model or bundled_bundle_paths()
    listed, status = [], ExitStatus.OK
    for path in paths:
        log.debug("verifying %s", path)
        try:
            listed.append(load_bundle(path, trusted_keys=trusted))
        except RadedgeError as exc:
            status = max(status, console.fail(exc, f"{path}: "))
    if args.json:
        print_json([model_record(bundle) for bundle in listed])
    else:
        for bundle in listed:
            manifest = bundle.manifest
            console.result(f"{manifest.model_id} {manifest.model_version}  {bundle.location} "
                           f"(sha256 {bundle.digest[:12]})")
            console.result(f"  {manifest.description}")
            console.result(f"  signature  {_signature_line(bundle)}")
            for line in describe(manifest):
                console.result(f"  {line}")
    if not paths:
        console.error("radedge: no bundled models found; name bundles with --model BUNDLE")
        return ExitStatus.MODEL
    return status


def model_record(bundle) -> dict:
    manifest = bundle.manifest
    scope = manifest.scope
    region = manifest.input_region
    return {
        "id": manifest.model_id,
        "version": manifest.model_version,
        "description": manifest.description,
        "bundle": str(bundle.location),
        "sha256": bundle.digest,
        "signature": bundle.signature.to_document(),
        "license": None if manifest.license is None else {"id": manifest.license.id, "terms": manifest.license.terms},
        "precisions": {name: precision.file for name, precision in manifest.precisions.items()},
        "input_region": None if region is None else {"model": region.model, "head": region.head,
                                                      "label": region.label, "margin": region.margin},
        "heads": [
            {"name": head.name, "kind": head.kind, "labels": list(head.labels),
             "flags": [{"code": rule.code, "title": rule.title, "label": rule.label, "threshold": rule.threshold}
                       for rule in head.flags]}
            for head in manifest.heads
        ],
        "display_head": manifest.display_head,
        "scope": {"modalities": list(scope.modalities), "presentation_intents": list(scope.presentation_intents),
                  "body_parts": list(scope.body_parts), "sop_classes": list(scope.sop_classes)},
    }


def _condition(kind: str, label: str, threshold: float) -> str:
    return {
        "classification": f"p({label}) >= {threshold}",
        "detection": f"a {label} box scores >= {threshold}",
        "heatmap": f"a {label} peak scores >= {threshold}",
        "segmentation": f"the {label} region covers >= {threshold} mm²",
    }.get(kind, f"{label} >= {threshold}")

"""Near-OOD / far-OOD roles: what each out-distribution is for each in-distribution.

OpenOOD v1.5 (Zhang et al., 2023) reports OOD detection per group: **near** (semantic shift,
similar images: for CIFAR-10, CIFAR-100 and TinyImageNet) and **far** (another domain: MNIST,
SVHN, Textures, Places365). isomax adds **noise** (synthetic Gaussian / uniform images, in no
OpenOOD benchmark) as a third group, so that the easy noise sets do not lift the far-OOD mean.

:data:`ROLES` holds the table; it is read on every call (:func:`ood_role`), so an entry added with
:func:`set_role` (or by editing the dict) takes effect at once. Assignments not from OpenOOD:

- CIFAR-10 / CIFAR-100: iSUN and LSUN-resize (ODIN's sets, not in OpenOOD v1.5) are **far**
  (scene images, like Places365); TinyImageNet-resize is OpenOOD's TinyImageNet (near),
  downscaled to 32x32 as ODIN did.
- Fashion-MNIST is no OpenOOD benchmark. Our choice: **near** = MNIST (the same format: centred
  28x28 grey objects on a black background; only the semantics differ, and it is the hardest set
  for every method measured here); **far** = the natural-image sets converted to 28x28 grey
  (iSUN, TinyImageNet-resize, LSUN-resize, CIFAR-10/100, SVHN, Textures, Places365).

>>> ood_role("cifar10", "cifar100"), ood_role("cifar10", "svhn"), ood_role("fashion-mnist", "uniform")
('near', 'far', 'noise')
"""

from __future__ import annotations
from ..errors import InputError

__all__ = ["ROLE_ORDER", "ROLES", "NOISE", "ood_role", "set_role", "roles_for"]

#: the groups, in table order
ROLE_ORDER = ("near", "far", "noise")
#: out-distributions that are noise for every in-distribution
NOISE = ("gaussian", "uniform")

_CIFAR_FAR = ("mnist", "svhn", "textures", "places365", "isun", "lsun-resize")

#: in-distribution -> {out-distribution: role} (canonical names; noise is added by :func:`ood_role`)
ROLES: dict[str, dict[str, str]] = {
    "cifar10": {"cifar100": "near", "tinyimagenet-resize": "near", **dict.fromkeys(_CIFAR_FAR, "far")},
    "cifar100": {"cifar10": "near", "tinyimagenet-resize": "near", **dict.fromkeys(_CIFAR_FAR, "far")},
    "fashion-mnist": {
        "mnist": "near",
        **dict.fromkeys(
            ("isun", "tinyimagenet-resize", "lsun-resize", "cifar10", "cifar100", "svhn", "textures", "places365"),
            "far",
        ),
    },
}


def _canonical(name: str) -> str:
    from .registry import canonical_name

    try:
        return canonical_name(str(name))
    except ValueError:  # a user's folder or archive: no role unless set_role names it
        return str(name)


def ood_role(in_dataset: str | None, out_dataset: str | None) -> str | None:
    """``"near"``, ``"far"`` or ``"noise"`` for this pair, or None when no role is assigned."""
    if out_dataset is None:
        return None
    ood = _canonical(out_dataset)
    role = None if in_dataset is None else ROLES.get(_canonical(in_dataset), {}).get(ood)
    if role is None and ood in NOISE:
        return "noise"
    return role


def set_role(in_dataset: str, out_dataset: str, role: str) -> None:
    """Assign (or change) the role of ``out_dataset`` for ``in_dataset``."""
    if role not in ROLE_ORDER:
        raise InputError(f"role must be one of {', '.join(ROLE_ORDER)}, not {role!r}")
    ROLES.setdefault(_canonical(in_dataset), {})[_canonical(out_dataset)] = role


def roles_for(in_dataset: str) -> dict[str, str]:
    """{out-distribution: role} for ``in_dataset``, noise included."""
    ind = _canonical(in_dataset)
    return {**dict.fromkeys(NOISE, "noise"), **ROLES.get(ind, {})}

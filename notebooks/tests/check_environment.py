"""Check that environment.yml (conda) and the pinned PyPI requirements cannot drift apart.

- every line of notebooks/requirements*.txt pins one exact version (`name==version`);
- each of those packages is in environment.yml's dependencies with the same version (PyPI and
  conda names compared with `-`, `_` and `.` as one), and every versioned conda dependency is
  in the requirements, except the conda-only ones (Python, Rust, fonts);
- jupyterlab is pinned in both;
- every `evcxr_jupyter --version X` in environment.yml's instructions, and every
  `evcxr_jupyter X` in notebooks/README.md, equals the Makefile's EVCXR_VERSION.

Plain Python, no packages needed. Usage (from anywhere):
    python3 notebooks/tests/check_environment.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENVIRONMENT = ROOT / "environment.yml"
MAKEFILE = ROOT / "Makefile"
NOTEBOOKS_README = ROOT / "notebooks" / "README.md"
REQUIREMENTS = sorted((ROOT / "notebooks").glob("requirements*.txt"))
# What conda installs that a virtual environment takes from the system instead.
CONDA_ONLY = {"python", "rust", "fonts-conda-ecosystem"}


def norm(name):
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def requirements(errors):
    """{normalised name: (version, 'file:line')} from every requirements file."""
    pins = {}
    for path in REQUIREMENTS:
        for i, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"{path.relative_to(ROOT)}:{i}"
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!-]+)", line)
            if not m:
                errors.append(f"{where}: '{line}' is not pinned to one version (name==version)")
                continue
            name = norm(m.group(1))
            if name in pins and pins[name][0] != m.group(2):
                errors.append(f"{where}: {m.group(1)} pinned twice ({pins[name][1]})")
            pins[name] = (m.group(2), where)
    return pins


def conda_dependencies(errors):
    """{normalised name: (version or None, spec)} from environment.yml's dependencies list."""
    deps = {}
    inside = False
    for i, raw in enumerate(ENVIRONMENT.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith((" ", "-")):
            inside = line.strip() == "dependencies:"
            continue
        if not inside:
            continue
        m = re.fullmatch(r"\s*-\s*(\S+)", line)
        if not m:
            errors.append(f"environment.yml:{i}: cannot read '{raw.strip()}' (one `- name=version` a line)")
            continue
        spec = m.group(1)
        if spec.endswith(":"):
            errors.append(f"environment.yml:{i}: nested lists ('{spec}') are not expected; pin conda packages")
            continue
        pm = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:(==?)([A-Za-z0-9.+!*-]+))?", spec)
        if not pm:
            errors.append(f"environment.yml:{i}: '{spec}' is neither `name` nor `name=version`")
            continue
        deps[norm(pm.group(1))] = (pm.group(3), spec)
    if not deps:
        errors.append("environment.yml: no dependencies found")
    return deps


def makefile_evcxr(errors):
    m = re.search(r"^EVCXR_VERSION\s*:?=\s*(\S+)\s*$", MAKEFILE.read_text(), re.M)
    if not m:
        errors.append("Makefile: no EVCXR_VERSION")
        return None
    return m.group(1)


def main():
    errors = []
    checked = 0
    pins = requirements(errors)
    deps = conda_dependencies(errors)
    if not REQUIREMENTS:
        errors.append("no notebooks/requirements*.txt")
    for name, (version, where) in sorted(pins.items()):
        checked += 1
        if name not in deps:
            errors.append(f"{where}: {name}=={version} is missing from environment.yml")
        elif deps[name][0] != version:
            errors.append(f"{where}: {name}=={version} but environment.yml has '{deps[name][1]}'")
    for name, (version, spec) in sorted(deps.items()):
        if version is not None and name not in CONDA_ONLY and name not in pins:
            checked += 1
            errors.append(f"environment.yml: '{spec}' is pinned there but in no notebooks/requirements*.txt")
    for where, table in (("notebooks/requirements*.txt", pins), ("environment.yml", deps)):
        if table.get("jupyterlab", (None,))[0] is None:
            errors.append(f"{where}: jupyterlab is not pinned to a version")
    if deps.get("python", (None,))[0] is None:
        errors.append("environment.yml: python is not pinned")

    evcxr = makefile_evcxr(errors)
    if evcxr is not None:
        named = re.findall(r"evcxr_jupyter\s+--version\s+(\S+)", ENVIRONMENT.read_text())
        if not named:
            errors.append("environment.yml: the instructions name no `evcxr_jupyter --version`")
        for version in named:
            checked += 1
            if version != evcxr:
                errors.append(f"environment.yml: evcxr_jupyter {version}, Makefile EVCXR_VERSION {evcxr}")
        for version in re.findall(r"evcxr_jupyter\s+v?(\d+\.\d+\.\d+)", NOTEBOOKS_README.read_text()):
            checked += 1
            if version != evcxr:
                errors.append(f"notebooks/README.md: evcxr_jupyter {version}, Makefile EVCXR_VERSION {evcxr}")

    if errors:
        for e in errors:
            print(f"environment check FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"environment.yml matches {', '.join(str(p.relative_to(ROOT)) for p in REQUIREMENTS)} "
          f"({len(pins)} pinned packages) and evcxr_jupyter {evcxr}; {checked} checks")


if __name__ == "__main__":
    main()

"""A hostile or damaged state folder or output folder, through the real CLI (a subprocess): every case is
exit 2 with a message naming the path, never a traceback and never exit 3; nothing is read or written
through a symbolic link.

Two classes need a fault no real file system here can produce on demand: a full disk (5) and a read-only
folder (6: the tests run as root, who ignores mode bits, and no read-only mount is available). Those
run the same CLI entry point (``hcops.cli.main``) in a subprocess whose ``os.write`` or
``tempfile.mkstemp`` fails as the kernel would; the crash-log case (7) also injects the unexpected
exception it is about, since no input is supposed to cause one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hcops.plan.keys import NODE_KEY, PRIV_VALIDATOR_KEY
from tests.conftest import SpecDir
from tests.render.helpers import seed_state

NETWORK = "small-net"
NODES = ["a-val-0", "b-val-0", "c-val-0", "d-val-0", "d-obs-0"]
OTHER_UID = 12345


def run(tmp: Path, *args: str, inject: str = "", env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``hcops ARGS`` in a subprocess, in ``tmp`` (where the default .hcops would go); ``inject``: Python
    run before the CLI, to simulate a fault."""
    environ = {k: v for k, v in os.environ.items() if k != "HCOPS_STATE_DIR"}
    environ.update(env or {})
    if inject:
        code = f"{textwrap.dedent(inject)}\nimport sys\nfrom hcops.cli import main\nmain(sys.argv[1:])\n"
        cmd = [sys.executable, "-c", code, *args]
    else:
        cmd = [sys.executable, "-m", "hcops", *args]
    return subprocess.run(cmd, cwd=tmp, env=environ, capture_output=True, text=True, timeout=60)


def refused(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The run ended in exit 2 with a message (no traceback) naming every needle; returns the message."""
    text = r.stdout + r.stderr
    assert r.returncode == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


def snapshot(path: Path) -> tuple[int, int, dict[str, str]]:
    """Mode, owner and content digests (of a file, or of every file below a folder) of a link's target:
    digests, so that a failing comparison never prints key material."""
    st = path.stat()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return stat.S_IMODE(st.st_mode), st.st_uid, {
        str(p.relative_to(path)) if p != path else "": hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A complete state root (deterministic test keys), as a first render leaves it."""
    seed_state(tmp_path / "state", NETWORK, NODES)
    return tmp_path / "state"


def keys_of(state: Path, node: str) -> Path:
    return state / NETWORK / "keys" / node


def render(tmp: Path, spec: SpecDir, state: Path, out: Path | None = None,
           inject: str = "") -> subprocess.CompletedProcess[str]:
    return run(tmp, "render", "-f", str(spec.spec), "-o", str(out or tmp / "out"), "--state-dir", str(state),
               "--generate-keys", inject=inject)


def victim(tmp: Path, content: bytes = b"not hcops' file\n", mode: int = 0o644) -> Path:
    path = tmp / "victim.txt"
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


def victim_dir(tmp: Path) -> Path:
    folder = tmp / "elsewhere"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    os.chmod(folder, 0o755)
    return folder


def private_values(state: Path) -> list[str]:
    values = []
    for node in NODES:
        for name in (NODE_KEY, PRIV_VALIDATOR_KEY):
            path = keys_of(state, node) / name
            if path.is_file() and not path.is_symlink():
                values.append(json.loads(path.read_text())["priv_key"]["value"])
    return values


# ------------------------------------------------------------------------------------ 1. symbolic links

def test_symlinked_node_key_folder_is_refused(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    target = victim_dir(tmp_path)
    before = snapshot(target)
    folder = keys_of(state, "b-val-0")
    shutil.rmtree(folder)
    folder.symlink_to(target, target_is_directory=True)
    # --state-dir itself may be a link (the user's choice, e.g. another disk); links inside it may not
    root_link = tmp_path / "state-link"
    root_link.symlink_to(state, target_is_directory=True)
    refused(render(tmp_path, spec_dir, root_link), str(keys_of(root_link, "b-val-0")), "symbolic link")
    assert snapshot(target) == before, "the link's target was chmod'ed or received keys"
    assert folder.is_symlink()


def test_symlinked_network_folder_is_refused(tmp_path: Path, spec_dir: SpecDir) -> None:
    target = victim_dir(tmp_path)
    before = snapshot(target)
    (tmp_path / "state").mkdir()
    link = tmp_path / "state" / NETWORK
    link.symlink_to(target, target_is_directory=True)
    refused(render(tmp_path, spec_dir, tmp_path / "state"), str(link), "symbolic link")
    assert snapshot(target) == before
    assert not list(target.rglob("*.json")), "a private key was written through the link"


def test_symlinked_genesis_time_is_not_copied_into_genesis(tmp_path: Path, spec_dir: SpecDir,
                                                           state: Path) -> None:
    secret = victim(tmp_path, b"2020-01-01T00:00:00Z\n", 0o600)  # even a plausible time is not read
    before = snapshot(secret)
    marker = state / NETWORK / "genesis_time"
    marker.unlink()
    marker.symlink_to(secret)
    text = refused(render(tmp_path, spec_dir, state), str(marker), "symbolic link")
    assert "2020-01-01" not in text and not (tmp_path / "out").exists()
    assert snapshot(secret) == before and marker.is_symlink()


def test_dangling_key_link_is_refused_not_replaced_by_a_new_key(tmp_path: Path, spec_dir: SpecDir,
                                                                state: Path) -> None:
    key = keys_of(state, "c-val-0") / PRIV_VALIDATOR_KEY
    key.unlink()
    key.symlink_to(tmp_path / "gone.json")
    refused(render(tmp_path, spec_dir, state), str(key), "symbolic link")
    assert key.is_symlink() and not (tmp_path / "gone.json").exists(), "a new key was generated"


def test_symlinked_output_file_is_not_written_or_chmoded_through(tmp_path: Path, spec_dir: SpecDir,
                                                                 state: Path) -> None:
    out = tmp_path / "out"
    assert render(tmp_path, spec_dir, state, out).returncode == 0
    rendered = out / "docker" / "nodes" / "a-val-0" / "keys" / NODE_KEY
    # same bytes as the rendered key: today's "unchanged file" shortcut chmod'ed and chown'ed the target
    target = victim(tmp_path, rendered.read_bytes(), 0o644)
    before = snapshot(target)
    rendered.unlink()
    rendered.symlink_to(target)
    refused(render(tmp_path, spec_dir, state, out), str(rendered), "symbolic link")
    assert snapshot(target) == before and rendered.is_symlink()


def test_symlinked_output_folder_is_refused(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    out = tmp_path / "out"
    assert render(tmp_path, spec_dir, state, out).returncode == 0
    target = victim_dir(tmp_path)
    before = snapshot(target)
    folder = out / "ansible" / "files" / "b-val-0" / "keys"
    shutil.rmtree(folder)
    folder.symlink_to(target, target_is_directory=True)
    refused(render(tmp_path, spec_dir, state, out), str(folder), "symbolic link")
    assert snapshot(target) == before, "keys were written into, or the mode changed on, the link's target"


# ------------------------------------------------------------------------------ 2. modes and owners

def test_world_readable_key_file_is_refused_with_the_chmod_to_run(tmp_path: Path, spec_dir: SpecDir,
                                                                  state: Path) -> None:
    key = keys_of(state, "a-val-0") / PRIV_VALIDATOR_KEY
    os.chmod(key, 0o644)
    text = refused(render(tmp_path, spec_dir, state), f"chmod 600 {key}")
    assert stat.S_IMODE(key.stat().st_mode) == 0o644, "refused, not silently repaired"
    leaked = any(v in text for v in private_values(state))  # a bare bool: a failure never prints a key
    assert not leaked


def test_group_readable_key_file_is_refused(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    key = keys_of(state, "d-obs-0") / NODE_KEY
    os.chmod(key, 0o640)
    refused(render(tmp_path, spec_dir, state), f"chmod 600 {key}")


def test_key_file_of_another_user_is_refused(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    key = keys_of(state, "b-val-0") / NODE_KEY
    os.chown(key, OTHER_UID, OTHER_UID)
    refused(render(tmp_path, spec_dir, state), str(key), f"uid {OTHER_UID}")


def test_open_key_folder_is_refused_with_the_chmod_to_run(tmp_path: Path, spec_dir: SpecDir,
                                                          state: Path) -> None:
    folder = keys_of(state, "c-val-0")
    os.chmod(folder, 0o755)
    refused(render(tmp_path, spec_dir, state), f"chmod 700 {folder}")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_network_folder_of_another_user_is_refused(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    folder = state / NETWORK
    os.chown(folder, OTHER_UID, OTHER_UID)
    refused(render(tmp_path, spec_dir, state), str(folder), f"uid {OTHER_UID}")


# ---------------------------------------------------------------------------- 3. duplicate keys

@pytest.mark.parametrize("name", [PRIV_VALIDATOR_KEY, NODE_KEY])
def test_copied_key_is_refused_naming_both_nodes(tmp_path: Path, spec_dir: SpecDir, state: Path,
                                                 name: str) -> None:
    shutil.copy2(keys_of(state, "a-val-0") / name, keys_of(state, "b-val-0") / name)
    text = refused(render(tmp_path, spec_dir, state), "a-val-0", "b-val-0")
    leaked = any(v in text for v in private_values(state))  # a bare bool: a failure never prints a key
    assert not leaked
    assert not (tmp_path / "out").exists()


def test_copied_validator_key_fails_check_too(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    shutil.copy2(keys_of(state, "a-val-0") / PRIV_VALIDATOR_KEY, keys_of(state, "d-val-0") / PRIV_VALIDATOR_KEY)
    refused(run(tmp_path, "check", "-f", str(spec_dir.spec), "--state-dir", str(state)), "a-val-0", "d-val-0")


# ------------------------------------------------------------------------------ 4. key JSON shape

PUB = "tendermint/PubKeyEd25519"


def _reshape(doc: dict[str, object], case: str) -> object:
    priv = doc["priv_key"]
    assert isinstance(priv, dict)
    shapes: dict[str, object] = {
        "list": [],
        "priv_key a number": {**doc, "priv_key": 5},
        "no priv_key": {k: v for k, v in doc.items() if k != "priv_key"},
        "secp256k1": {**doc, "priv_key": {**priv, "type": "tendermint/PrivKeySecp256k1"}},
        "short pub_key": {**doc, "pub_key": {"type": PUB, "value": "AAAA"}},
        "pub_key not base64": {**doc, "pub_key": {"type": PUB, "value": "not base64!"}},
        "no address": {k: v for k, v in doc.items() if k != "address"},
    }
    return shapes[case]


@pytest.mark.parametrize("case", ["list", "priv_key a number", "no priv_key", "secp256k1", "short pub_key",
                                  "pub_key not base64", "no address"])
def test_key_file_of_the_wrong_shape_is_exit_2(tmp_path: Path, spec_dir: SpecDir, state: Path, case: str) -> None:
    key = keys_of(state, "a-val-0") / PRIV_VALIDATOR_KEY
    secrets = private_values(state)
    key.write_text(json.dumps(_reshape(json.loads(key.read_text()), case)))  # keeps the file's 0600
    text = refused(render(tmp_path, spec_dir, state), str(key), "expected")
    leaked = any(v in text for v in secrets)
    assert not leaked


# -------------------------------------------------------------------------------- 5. full disk

# os.write fails half-way through any file named in FULL (or a temp file for it), as on a full disk.
ENOSPC = """
    import errno, os
    FULL = {full!r}
    _write = os.write
    def write(fd, data):
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{{fd}}"))
        except OSError:
            name = ""
        if any(name == f or name.startswith(f".{{f}}.") for f in FULL):  # the file or a temp file for it
            _write(fd, bytes(data[: max(1, len(data) // 2)]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _write(fd, data)
    os.write = write
"""


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_full_disk_on_rerender_keeps_every_previous_file(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    out = tmp_path / "out"
    assert render(tmp_path, spec_dir, state, out).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("config.toml")}
    assert len(before) >= 5
    spec_dir.write(spec_dir.spec.read_text().replace("blockInterval: 1s", "blockInterval: 2s"))
    text = refused(render(tmp_path, spec_dir, state, out, inject=ENOSPC.format(full=["config.toml"])), "config.toml")
    assert "no space left" in text.lower()
    assert {p: p.read_bytes() for p in out.rglob("config.toml")} == before
    assert not leftovers(out)


def test_full_disk_on_first_render_leaves_no_empty_files(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    out = tmp_path / "out"
    full = ["compose.yaml", "genesis.json"]
    text = refused(render(tmp_path, spec_dir, state, out, inject=ENOSPC.format(full=full)))
    assert "no space left" in text.lower()
    assert not (out / "docker" / "compose.yaml").exists() and not (out / "docker" / "genesis.json").exists()
    assert not [p for p in out.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert not leftovers(out)


# ----------------------------------------------------------------- 6. a file where a folder belongs

def test_network_folder_is_a_file(tmp_path: Path, spec_dir: SpecDir) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / NETWORK).write_text("x")
    refused(render(tmp_path, spec_dir, tmp_path / "state"), str(tmp_path / "state" / NETWORK), "folder")


def test_keys_folder_is_a_file(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    keys = state / NETWORK / "keys"
    shutil.rmtree(keys)
    keys.write_text("x")
    refused(render(tmp_path, spec_dir, state), str(keys), "folder")


def test_default_state_folder_is_a_file(tmp_path: Path, spec_dir: SpecDir) -> None:
    (tmp_path / ".hcops").write_text("x")
    refused(run(tmp_path, "render", "-f", str(spec_dir.spec), "-o", "out"), ".hcops", "folder")


def test_output_below_a_file(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    refused(render(tmp_path, spec_dir, state, blocker / "out"), str(blocker), "folder")


def test_output_target_folder_is_a_file(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "docker").write_text("x")
    refused(render(tmp_path, spec_dir, state), str(tmp_path / "out" / "docker"), "folder")


# mkstemp fails as it would in a read-only folder (root ignores mode bits, so it cannot be made for real).
READ_ONLY = """
    import errno, os, tempfile
    def mkstemp(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
    tempfile.mkstemp = mkstemp
"""


def test_read_only_state_folder(tmp_path: Path, spec_dir: SpecDir) -> None:
    state = tmp_path / "state"
    text = refused(run(tmp_path, "render", "--generate-keys", "-f", str(spec_dir.spec), "-o", "out", "--state-dir", str(state),
                       inject=READ_ONLY), str(state / NETWORK / "keys"))
    assert "read-only" in text.lower()


def test_read_only_output_folder(tmp_path: Path, spec_dir: SpecDir, state: Path) -> None:
    text = refused(render(tmp_path, spec_dir, state, inject=READ_ONLY), str(tmp_path / "out"))
    assert "read-only" in text.lower()


# ------------------------------------------------------------------ 7. a crash log that cannot be saved

CRASH = """
    import tempfile
    import hcops.usecases.render
    def render(*args, **kwargs):
        raise RuntimeError("injected failure")
    hcops.usecases.render.render = render
    tempfile.gettempdir = lambda: {temp!r}
"""


def test_unsaveable_crash_log_gives_the_short_message(tmp_path: Path, spec_dir: SpecDir) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    r = run(tmp_path, "render", "-f", str(spec_dir.spec), "-o", "out",
            inject=CRASH.format(temp=str(blocker / "tmp")), env={"HCOPS_STATE_DIR": str(blocker / "state")})
    text = r.stdout + r.stderr
    assert r.returncode == 3, text
    assert "Traceback" not in text
    assert "internal error: RuntimeError: injected failure" in text
    assert "could not be saved" in text and str(blocker) in text


def test_crash_log_is_saved_when_it_can_be(tmp_path: Path, spec_dir: SpecDir) -> None:
    r = run(tmp_path, "render", "-f", str(spec_dir.spec), "-o", "out",
            inject=CRASH.format(temp=str(tmp_path / "tmp")), env={"HCOPS_STATE_DIR": str(tmp_path / "state")})
    assert r.returncode == 3 and "Traceback" not in r.stderr
    logs = list((tmp_path / "state").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in r.stderr and "injected failure" in logs[0].read_text()
    assert stat.S_IMODE(logs[0].stat().st_mode) == 0o600


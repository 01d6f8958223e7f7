"""docs/deploy.md works as written: its ```bash blocks run in order against the test
PostgreSQL (a throwaway database and roles with unique names, dropped afterwards), and its
```nginx block passes ``nginx -t`` (Debian's nginx, unpacked from its package, never
started as a service; a self-signed certificate stands in for the real one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from .docs_runner import REPO, BlockFailed, blocks, run_document

GUIDE = REPO / "docs" / "deploy.md"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CERT_DIR = "/etc/letsencrypt/live/tp.example.org/"
NGINX_CACHE = REPO / ".cache" / "nginx"
#: nginx's compiled-in temporary folders (/var/lib/nginx/...), moved into the test's folder
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _admin_url() -> sa.URL:
    return sa.make_url(os.environ.get("TRIGGERPATH_TEST_POSTGRES_URL") or DEFAULT_PG)


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """Unique database and role names; whatever the guide created is dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    chosen = {"TP_DB": f"tp_deploy_{tag}", "TP_OWNER": f"tp_owner_{tag}", "TP_APP": f"tp_app_{tag}"}
    yield chosen
    engine = sa.create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for db in (chosen["TP_DB"], f"{chosen['TP_DB']}_restore_drill"):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            for role in (chosen["TP_APP"], chosen["TP_OWNER"]):
                conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_guide_commands_run_in_order(names: dict[str, str], tmp_path: Path) -> None:
    url = _admin_url()
    env = {
        **names,
        "TP_ETC": str(tmp_path / "etc"),
        "TP_BACKUPS": str(tmp_path / "backups"),
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
    }
    try:
        outputs = run_document(GUIDE, tmp_path, env=env)
    except BlockFailed as exc:
        pytest.fail(str(exc), pytrace=False)
    text = "\n".join(outputs)
    assert "ready: ok" in text  # db status after the upgrade, and in the restore drill
    assert re.search(r"clinic\.admin\s+admin\s+active", text)
    assert "sign-in: HTTP 200" in text
    assert '{"status":"ok"}' in text.replace(" ", "")
    assert "backup ok:" in text
    assert (tmp_path / "etc" / "env").stat().st_mode & 0o077 == 0, "secrets readable by others"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            drill = conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :d"),
                {"d": f"{names['TP_DB']}_restore_drill"},
            ).scalar_one()
    finally:
        engine.dispose()
    assert drill == 0, "the restore drill leaves no scratch database behind"


@pytest.mark.postgres
def test_service_role_cannot_change_the_schema(names: dict[str, str], tmp_path: Path) -> None:
    """The grants of section 3 (run from the guide itself) give the service role rows only."""
    url = _admin_url()
    guide = GUIDE.read_text(encoding="utf-8")
    sql_block = next(
        b.text for b in blocks(guide) if b.language == "bash" and "CREATE ROLE" in b.text
    )
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "owner.db-password").write_text("owner-pw\n", encoding="utf-8")
    (etc / "app.db-password").write_text("app-pw\n", encoding="utf-8")
    env = {
        **os.environ,
        **names,
        "TP_ETC": str(etc),
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
    }
    subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + sql_block], env=env, check=True, timeout=60
    )
    owner = url.set(username=names["TP_OWNER"], password="owner-pw", database=names["TP_DB"])
    app = url.set(username=names["TP_APP"], password="app-pw", database=names["TP_DB"])
    for who, u in (("owner", owner), ("app", app)):
        engine = sa.create_engine(u, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if who == "owner":
                    conn.execute(sa.text("CREATE TABLE t (id int)"))
                    continue
                conn.execute(sa.text("INSERT INTO t VALUES (1)"))  # rows: allowed
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sa.text("CREATE TABLE u (id int)"))
                with pytest.raises(sa.exc.ProgrammingError, match="must be owner"):
                    conn.execute(sa.text("DROP TABLE t"))
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- nginx
def _nginx() -> str:
    """Debian's nginx binary: on PATH, or unpacked (not installed, not started) into .cache."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found:
        return found
    unpacked = NGINX_CACHE / "root" / "usr" / "sbin" / "nginx"
    if unpacked.is_file():
        return str(unpacked)
    NGINX_CACHE.mkdir(parents=True, exist_ok=True)
    download = ["apt-get", "download", "-q", "nginx"]
    if subprocess.run(download, cwd=NGINX_CACHE, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(download, cwd=NGINX_CACHE, capture_output=True, check=True, timeout=300)
    deb = sorted(NGINX_CACHE.glob("nginx_*.deb"))[-1]
    subprocess.run(["dpkg", "-x", str(deb), str(NGINX_CACHE / "root")], check=True)
    return str(unpacked)


def _self_signed(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tp.example.org")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True)
    (folder / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_nginx_example_passes_nginx_t(tmp_path: Path) -> None:
    conf = _main_config(tmp_path, _site_config(tmp_path))
    proc = subprocess.run(
        [_nginx(), "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def _site_config(tmp_path: Path, ports: dict[str, str] | None = None) -> str:
    """The guide's nginx block with test certificates, logs in tmp and (optionally) ports."""
    configs = [b.text for b in blocks(GUIDE.read_text(encoding="utf-8")) if b.language == "nginx"]
    assert len(configs) == 1, "deploy.md has exactly one ```nginx block"
    site = configs[0]
    assert CERT_DIR in site, f"the certificate paths changed; update CERT_DIR ({CERT_DIR})"
    certs = tmp_path / "certs"
    if not certs.exists():
        _self_signed(certs)
    site = site.replace(CERT_DIR, f"{certs}/").replace("/var/log/nginx/", f"{tmp_path}/")
    for old, new in (ports or {}).items():
        assert old in site, f"the guide's nginx block no longer has {old!r}"
        site = site.replace(old, new)
    return site


def _main_config(tmp_path: Path, site: str, *, foreground: bool = False) -> Path:
    (tmp_path / "triggerpath.conf").write_text(site, encoding="utf-8")
    head = "daemon off;\nmaster_process off;\n" if foreground else ""
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"{head}pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {tmp_path}/{kind};\n" for kind in TEMP_PATHS)
        + f"  include {tmp_path}/triggerpath.conf;\n}}\n",
        encoding="utf-8",
    )
    return conf


def test_nginx_example_proxies_to_the_service_over_tls(tmp_path: Path) -> None:
    """The same configuration, on free ports, in front of a development server: HTTP is
    redirected to HTTPS, HTTPS reaches the service with the original host, /readyz answers
    loopback callers."""
    import ssl
    import time
    import urllib.error
    import urllib.request

    from .docs_runner import free_port

    app_port, https, http = free_port(), free_port(), free_port()
    ports = {
        "127.0.0.1:8001": f"127.0.0.1:{app_port}",
        "127.0.0.1:8002": f"127.0.0.1:{app_port}",
        "listen 443": f"listen {https}",
        "listen [::]:443": f"listen [::1]:{https}",
        "listen 80": f"listen {http}",
        "listen [::]:80": f"listen [::1]:{http}",
    }
    conf = _main_config(tmp_path, _site_config(tmp_path, ports), foreground=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERPATH_")}
    env["TRIGGERPATH_DATA_DIR"] = str(tmp_path / "data")
    server = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "triggerpath"), "serve", "--port", str(app_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = subprocess.Popen(
        [_nginx(), "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate
    try:
        url = f"https://127.0.0.1:{https}/healthz"
        body = ""
        for _ in range(240):
            try:
                with urllib.request.urlopen(url, context=insecure, timeout=5) as response:
                    body = response.read().decode()
                    hsts = response.headers.get_all("Strict-Transport-Security") or []
                    assert len(hsts) == 1, hsts  # the service's, not doubled by the proxy
                    assert "max-age=" in hsts[0]
                    break
            except (urllib.error.HTTPError, urllib.error.URLError, ConnectionError):
                assert proxy.poll() is None, proxy.stderr.read() if proxy.stderr else ""
                time.sleep(0.5)
        assert '"ok"' in body, "no answer from the service through the proxy"
        with urllib.request.urlopen(
            f"https://127.0.0.1:{https}/readyz", context=insecure, timeout=10
        ) as response:
            assert response.status == 200
        redirect = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "-H",
                "Host: tp.example.org",
                f"http://127.0.0.1:{http}/app/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert redirect == "301 https://tp.example.org/app/"
    finally:
        for proc in (proxy, server):
            proc.terminate()
            proc.wait(timeout=30)

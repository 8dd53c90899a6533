"""Extensions tab engine: install from a local bare repository, enable/disable across a restart, update, refusal."""
import os
import subprocess

import pytest

from modules import extension_manager, extensions, options, paths_internal, shared, shared_options


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"))


def make_extension_repo(tmp_path, name="hello-ext", install_py=None):
    work = tmp_path / f"{name}-work"
    (work / "scripts").mkdir(parents=True)
    (work / "scripts" / "hello.py").write_text("VALUE = 1\n")
    if install_py is not None:
        (work / "install.py").write_text(install_py)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    bare = tmp_path / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return work, bare


@pytest.fixture
def ext_env(tmp_path, monkeypatch):
    ext_dir = tmp_path / "extensions"
    ext_dir.mkdir()
    monkeypatch.setattr(paths_internal, "extensions_dir", str(ext_dir))
    monkeypatch.setattr(extensions, "extensions_dir", str(ext_dir))
    monkeypatch.setattr(paths_internal, "config_states_dir", str(tmp_path / "config_states"))
    monkeypatch.setattr(shared, "config_filename", str(tmp_path / "config.json"))
    monkeypatch.setattr(shared.cmd_opts, "disable_extension_access", False)
    saved = dict(shared.opts.data)
    extensions.list_extensions()
    yield ext_dir
    shared.opts.data.clear()
    shared.opts.data.update(saved)
    extensions.list_extensions()


def test_install_from_local_bare_repository(ext_env, tmp_path):
    _, bare = make_extension_repo(tmp_path)
    path = extension_manager.install_from_url(str(bare))
    assert path == os.path.join(str(ext_env), "hello-ext")
    assert os.path.exists(os.path.join(path, "scripts", "hello.py"))
    assert "hello-ext" in [e.name for e in extensions.extensions]
    with pytest.raises(FileExistsError, match="already exists"):
        extension_manager.install_from_url(str(bare))


def test_unreachable_url_and_non_extension_leave_nothing(ext_env, tmp_path):
    with pytest.raises(RuntimeError, match="Could not clone"):
        extension_manager.install_from_url(str(tmp_path / "missing.git"))
    empty = tmp_path / "notext"
    empty.mkdir()
    (empty / "README.md").write_text("hi")
    git("init", "-q", "-b", "main", cwd=empty)
    git("add", ".", cwd=empty)
    git("commit", "-q", "-m", "x", cwd=empty)
    with pytest.raises(ValueError, match="does not look like an extension"):
        extension_manager.install_from_url(str(empty))
    assert os.listdir(ext_env) == []


def test_failing_install_script_is_removed(ext_env, tmp_path):
    _, bare = make_extension_repo(tmp_path, "broken-ext", install_py="raise SystemExit(3)\n")
    with pytest.raises(RuntimeError, match="install.py of broken-ext failed"):
        extension_manager.install_from_url(str(bare))
    assert not os.path.exists(os.path.join(str(ext_env), "broken-ext"))


def test_disable_and_reenable_survive_a_restart(ext_env, tmp_path):
    _, bare = make_extension_repo(tmp_path)
    extension_manager.install_from_url(str(bare))
    extension_manager.apply_enabled([], "none")
    restarted = options.Options(shared_options.options_templates, set())
    restarted.load(shared.config_filename)
    assert restarted.disabled_extensions == ["hello-ext"]
    extensions.list_extensions()
    assert [e.enabled for e in extensions.extensions if e.name == "hello-ext"] == [False]
    extension_manager.apply_enabled(["hello-ext"], "none")
    extensions.list_extensions()
    assert [e.enabled for e in extensions.extensions if e.name == "hello-ext"] == [True]


def test_update_to_a_new_commit_backs_up_config(ext_env, tmp_path):
    work, bare = make_extension_repo(tmp_path)
    path = extension_manager.install_from_url(str(bare))
    (work / "scripts" / "hello.py").write_text("VALUE = 2\n")
    git("commit", "-q", "-am", "second", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    statuses = extension_manager.check_for_updates()
    assert statuses["hello-ext"] == "new commits"
    results = extension_manager.update(["hello-ext"])
    assert results["hello-ext"].startswith("updated to")
    assert open(os.path.join(path, "scripts", "hello.py")).read() == "VALUE = 2\n"
    assert len(os.listdir(paths_internal.config_states_dir)) == 1


def test_changes_refused_when_exposed(ext_env, tmp_path, monkeypatch):
    monkeypatch.setattr(shared.cmd_opts, "disable_extension_access", True)
    with pytest.raises(extension_manager.ExtensionAccessError, match="--enable-insecure-extension-access"):
        extension_manager.install_from_url("file:///nowhere.git")
    with pytest.raises(extension_manager.ExtensionAccessError):
        extension_manager.apply_enabled([], "none")


def test_index_from_local_file_and_closed_network(tmp_path):
    index = tmp_path / "index.json"
    index.write_text('{"extensions": [{"name": "A", "url": "https://example.invalid/a.git", "description": "d"}]}')
    items = extension_manager.load_index(str(index))
    assert items[0]["name"] == "A" and items[0]["installed"] is False
    with pytest.raises(RuntimeError, match="Could not load the extension index"):
        extension_manager.load_index("http://127.0.0.1:9/index.json")

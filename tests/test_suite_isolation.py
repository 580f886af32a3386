"""The suite never touches a user's own data-set root."""

import os
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.mark.slow
def test_conftest_ignores_the_users_fastreid_datasets(tmp_path):
    """With FASTREID_DATASETS exported (a user's real Market-1501 / Duke folders), importing the
    test configuration points fast-reid at the suite's own folder: the fixtures write synthetic
    data sets there with ``overwrite=True`` and delete the folder at the end."""
    users = tmp_path / "my_datasets"
    users.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FASTREID_MMT_TEST_DATA"}
    env["FASTREID_DATASETS"] = str(users)
    code = "import os, tests.conftest; print(os.environ['FASTREID_DATASETS'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    used = out.stdout.strip().splitlines()[-1]
    assert used != str(users) and "fastreid-mmt-data-pid" in used
    os.rmdir(used)  # the child's empty folder (the child has no session teardown)
    assert list(users.iterdir()) == []

"""The whole day in a real browser: Debian's headless Chromium, driven by Playwright,
against `loraforge up` (API, worker and web UI as separate processes on the embedded
defaults). Sign in, upload a data set, submit a tiny job, watch it succeed, open the
experiment, predict, promote its registered version to Production. A screenshot of each
page is saved under test-artifacts/screenshots/. Nothing the pages load may come from
another host: the UI must work offline.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import make_texts
from playwright import sync_api
from services import free_port, required

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LORAFORGE = Path(sys.executable).with_name("loraforge")
SCREENSHOTS = Path(__file__).parents[1] / "test-artifacts" / "screenshots"
PASSWORD = "a long browser password"
pytestmark = pytest.mark.slow


def wait_for(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "loraforge up exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def platform(tmp_path):
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "results"),
        "LORAFORGE_UI_REFRESH_S": "1",
    }
    subprocess.run(
        [str(LORAFORGE), "users", "create", "ada", "--admin", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    api_port, ui_port = free_port(), free_port()
    log = open(tmp_path / "up.log", "w")  # noqa: SIM115
    up = subprocess.Popen(
        [str(LORAFORGE), "up", "--api-port", str(api_port), "--ui-port", str(ui_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{api_port}/health", up)
        wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health", up)
        yield f"http://127.0.0.1:{ui_port}", f"http://127.0.0.1:{api_port}", tmp_path
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        if required():  # .ci/run installs it, so missing there is a failure
            pytest.fail("Debian's chromium is required (LORAFORGE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        page = context.new_page()
        yield page
        # The page as the test left it: on a failure, what the user would have seen.
        page.screenshot(path=SCREENSHOTS / "last-page.png", full_page=True)
        browser.close()


@pytest.fixture
def elsewhere(page) -> list[str]:
    """Every URL the page asks another host than this machine for (a favicon, a font,
    a script from a CDN): each fails offline, so the list must stay empty."""
    urls: list[str] = []

    def seen(url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in (
            "127.0.0.1",
            "localhost",
            "::1",
        ):
            urls.append(url)

    page.on("request", lambda request: seen(request.url))
    page.on("websocket", lambda socket: seen(socket.url))
    return urls


def choose(page, label: str, option: str) -> None:
    """Streamlit's select boxes are searchable combo boxes: type, then take the match."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.keyboard.press("Enter")
    sync_api.expect(box).to_have_value(option)


def shot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main area, so the window is made as
    tall as that area for the picture."""
    page.wait_for_timeout(800)  # let charts finish drawing
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.wait_for_timeout(300)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    page.set_viewport_size(size)


def test_a_new_user_goes_from_data_to_a_prediction_in_the_browser(
    platform, page, elsewhere, tiny_model_dir
):
    url, api_url, tmp_path = platform
    expect = sync_api.expect
    data_file = tmp_path / "reviews.csv"
    make_texts(160, seed=7).to_csv(data_file, index=False)

    page.goto(url)
    page.get_by_label("Username", exact=True).fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    shot(page, "01-sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="New fine-tuning job")).to_be_visible()

    # Upload: validated before anything runs, with its charts.
    page.get_by_text("Upload a file").click()
    page.locator("input[type=file]").set_input_files(data_file)
    # The file's own columns, offered before anything is sent.
    expect(page.get_by_role("combobox", name="Text column")).to_have_value("text")
    expect(page.get_by_role("combobox", name="Label column")).to_have_value("label")
    shot(page, "02a-upload-columns")
    page.get_by_role("button", name="Validate and upload").click()
    expect(page.get_by_text("Validated: no warnings.")).to_be_visible(timeout=30_000)
    expect(page.locator(".vega-embed").first).to_be_visible()

    # A tiny model from the server's disk, one epoch, then submit.
    choose(page, "Base model", "Other: a Hugging Face id or a folder on the server")
    page.get_by_label("Hugging Face id or server folder", exact=True).fill(str(tiny_model_dir))
    page.get_by_label("Hugging Face id or server folder", exact=True).press("Enter")
    name = page.get_by_label("Experiment name", exact=True)
    name.fill("browser-e2e")
    page.get_by_label("Epochs", exact=True).fill("4")
    page.get_by_label("Learning rate", exact=True).fill("0.005")
    page.get_by_label("Batch size", exact=True).fill("8")
    choose(page, "Precision", "fp32")
    shot(page, "02-new-job")
    page.get_by_role("button", name="Start fine-tuning").click()

    # The job page follows it live until it is done.
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_text("finished:")).to_be_visible(timeout=180_000)
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("succeeded")
    shot(page, "03-job-succeeded")

    page.get_by_role("link", name="Open the experiment").click()
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    expect(page.get_by_text("Confusion matrix (rows: true label)")).to_be_visible()
    shot(page, "04-experiment")

    page.get_by_role("link", name="Try this model").click()
    expect(page.get_by_role("heading", name="Try a model")).to_be_visible()
    page.get_by_label("Texts, one per line", exact=True).fill("great good happy\nawful bad sad")
    page.get_by_role("button", name="Predict").click()
    # The first prediction loads the model: seconds, more on a busy machine.
    expect(page.get_by_text("Predicted label and its probability")).to_be_visible(timeout=60_000)
    shot(page, "05-prediction")

    # A second run (LoRA rank 4 instead of 8), submitted over the API the UI uses, to compare.
    token = httpx.post(f"{api_url}/login", data={"username": "ada", "password": PASSWORD})
    api = httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    first = api.get("/tasks").json()["data"][0]
    body = {**first["config"], "lora": {**first["config"]["lora"], "r": 4}}
    second = api.post("/train", json=body).json()["task_id"]
    deadline = time.monotonic() + 180
    while api.get(f"/task/{second}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(1)
    page.get_by_role("link", name="Experiments").click()
    expect(page.get_by_role("heading", name="Metrics per epoch")).to_be_visible()
    expect(page.get_by_text("Final metrics")).to_be_visible()
    shot(page, "06-compare")

    # The registry: register the first run, then promote it through Staging to Production
    # with the buttons; the stage and the history follow.
    registered = api.post(
        "/models", json={"experiment_id": first["experiment_id"], "name": "browser-demo"}
    )
    assert registered.status_code == 201, registered.text
    page.goto(f"{url}/models?name=browser-demo&version=1")
    expect(page.get_by_role("heading", name="browser-demo v1")).to_be_visible()
    stage = page.get_by_test_id("stMetric").filter(has_text="Stage").get_by_test_id("stMetricValue")
    expect(stage).to_have_text("no stage")
    page.get_by_label("Reason (kept in the history)", exact=True).fill("checked in the browser")
    page.get_by_role("button", name="Promote to Staging").click()
    expect(page.get_by_text("browser-demo v1: no stage → Staging.")).to_be_visible()
    expect(stage).to_have_text("Staging")
    page.get_by_role("button", name="Promote to Production").click()
    expect(page.get_by_text("browser-demo v1: Staging → Production.")).to_be_visible()
    expect(stage).to_have_text("Production")
    expect(page.get_by_text("ada · v1: Staging → Production").first).to_be_visible()
    shot(page, "06b-model-registry")

    page.get_by_role("link", name="Users and audit log").click()
    expect(page.get_by_role("heading", name="Users and audit log")).to_be_visible()
    shot(page, "07-admin-users")
    page.get_by_role("tab", name="Audit log").click()
    expect(page.get_by_label("Action", exact=True)).to_be_visible()
    shot(page, "08-admin-audit-log")
    names = ("01-sign-in", "02-new-job", "03-job-succeeded", "04-experiment", "05-prediction")
    for name in (
        *names,
        "06-compare",
        "06b-model-registry",
        "07-admin-users",
        "08-admin-audit-log",
    ):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
    # The whole walk (icons, fonts, charts, favicon) came from this machine only.
    assert elsewhere == [], sorted(set(elsewhere))


JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")  # any JSON Web Token, ours or not


def test_a_reload_keeps_you_signed_in_and_a_deep_link_opens_after_sign_in(
    platform, page, elsewhere, tiny_model_dir
):
    url, api_url, tmp_path = platform
    expect = sync_api.expect
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    page.on("request", lambda request: visited.append(request.url))

    # A job to link to, made over the API as another tab of the same person would.
    login = httpx.post(f"{api_url}/login", data={"username": "ada", "password": PASSWORD})
    api = httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    content = make_texts(40, seed=5).to_csv(index=False).encode()
    dataset = api.post("/datasets", files={"file": ("links.csv", content)}).json()
    body = {
        "experiment_name": "deep-link",
        "model": {"base_model": str(tiny_model_dir), "device": "cpu"},
        "data": {"dataset_id": dataset["id"], "eval_split": 0.25, "max_length": 32},
        "training": {"epochs": 1, "batch_size": 8, "precision": "fp32"},
    }
    task_id = api.post("/train", json=body).json()["task_id"]

    # Signed out, a deep link shows the sign-in form at that URL, not "Page not found".
    page.goto(f"{url}/jobs?task={task_id}")
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.get_by_text("Sign in to open Jobs")).to_be_visible()
    page.get_by_label("Username", exact=True).fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_text(task_id).first).to_be_visible()
    assert page.url.endswith(f"/jobs?task={task_id}")
    expect(page.get_by_text("Page not found")).to_have_count(0)

    # The browser holds a random key, not the token.
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "loraforge_session" in cookies, cookies
    session_cookie = cookies["loraforge_session"]
    assert len(session_cookie["value"]) >= 40 and not JWT.search(session_cookie["value"])
    assert session_cookie["sameSite"] == "Strict" and session_cookie["expires"] > time.time()

    # A reload keeps you signed in, on the same page.
    page.reload()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.get_by_text(task_id).first).to_be_visible()
    expect(page.get_by_text("Signed in as ada")).to_be_visible()
    shot(page, "09-after-reload")

    # Run again: New job opens with the job's settings.
    page.get_by_role("button", name="Run again with these settings").click()
    expect(page.get_by_role("heading", name="New fine-tuning job")).to_be_visible()
    expect(page.get_by_text("Starting from the settings of deep-link")).to_be_visible()
    expect(page.get_by_label("Experiment name", exact=True)).to_have_value("deep-link")
    expect(page.get_by_label("Epochs", exact=True)).to_have_value("1")
    expect(page.get_by_label("Hugging Face id or server folder", exact=True)).to_have_value(
        str(tiny_model_dir)
    )
    page.goto(f"{url}/experiments")
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()

    # Signing out clears the cookie; the old key opens nothing any more.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    deadline = time.monotonic() + 10
    while any(c["name"] == "loraforge_session" for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the cookie was not cleared on sign-out"
        page.wait_for_timeout(200)
    page.context.add_cookies([{**session_cookie}])
    page.reload()
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.get_by_text("Signed in as ada")).to_have_count(0)

    # The token appears in no URL the browser opened and in none of the services' logs.
    assert visited and not [u for u in visited if JWT.search(u)]
    assert elsewhere == [], sorted(set(elsewhere))
    for log in tmp_path.rglob("*.log"):
        assert not JWT.search(log.read_text(errors="replace")), f"a token in {log}"

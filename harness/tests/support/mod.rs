//! What the harness's integration tests share (`mod support;` in each test file).

/// Whether Chromium and chromedriver are here: without them a browser test skips locally with
/// the reason, and fails in CI (`CI` set).
pub fn chromium_available() -> bool {
    harness::browser::webdriver::driver_available_for_tests(harness::contract::Engine::Chromium)
}

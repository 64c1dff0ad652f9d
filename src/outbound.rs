//! sitewatch's own outgoing requests (notifications, watchdog pings), as
//! opposed to checks: the system's roots, full verification, and one client
//! shape for all of them.

/// The client of sitewatch's own requests: it follows no redirect (a
/// 301/302/303 would turn the POST into a GET without the event, a
/// 307/308 would post it, and the URL in `Referer`, to another host) and
/// sends no `Referer`.
pub fn client(timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(crate::probe::tls_config()?)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("sitewatch/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

//! What the status page shows beyond the figures: its `[page]` settings
//! (title, description, logo, favicon, links, footer), which sites it
//! leaves out (`public = false`) or shows without their URL (`hide_url`),
//! and the groups it shows as sections. Validated before anything is
//! written: a missing logo or a `javascript:` link is a configuration
//! error naming it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::sites::PageRaw;

/// The page's settings, validated.
#[derive(Debug, Clone, Default)]
pub struct Look {
    pub title: String,
    pub description: Option<String>,
    /// A file to copy beside the page, and the name it gets there.
    pub logo: Option<(PathBuf, String)>,
    pub favicon: Option<(PathBuf, String)>,
    /// Name and URL of each header link.
    pub links: Vec<(String, String)>,
    pub footer: Option<String>,
    /// Sites left out of the page, its badges and status.json.
    pub private: HashSet<String>,
    /// Sites whose URL the page does not show.
    pub hidden_urls: HashSet<String>,
    /// Each site's group.
    pub groups: HashMap<String, String>,
    /// What people wrote for the page (`[page] announcements`).
    pub announcements: Vec<super::announcements::Announcement>,
    /// The `[[maintenance]]` windows, announced as they come.
    pub maintenance: Vec<crate::alert::policy::Window>,
}

impl Look {
    /// The look at `now`: the announcements people wrote, and each
    /// maintenance window going on or coming, about the sites it shows.
    pub fn at(&self, now: time::OffsetDateTime) -> Look {
        let mut look = self.clone();
        let shown = |site: &str| !self.private.contains(site);
        look.announcements.extend(
            self.maintenance
                .iter()
                .filter_map(|w| super::announcements::of_maintenance(w, &shown, now)),
        );
        look
    }
}

/// The image types a logo or a favicon can be.
const IMAGES: &[&str] = &["svg", "png", "jpg", "jpeg", "gif", "webp", "ico"];

impl Look {
    /// The look of `[page]` (files relative to `base`, the sites file's
    /// folder) and of the sites' keys in `config`.
    pub fn new(
        raw: Option<&PageRaw>,
        base: &Path,
        config: &crate::alert::policy::Config,
    ) -> Result<Look, String> {
        let empty = PageRaw::default();
        let raw = raw.unwrap_or(&empty);
        let image =
            |key: &str, path: &Option<PathBuf>| -> Result<Option<(PathBuf, String)>, String> {
                let Some(path) = path else { return Ok(None) };
                let full = base.join(path);
                let ext = full
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .filter(|e| IMAGES.contains(&e.as_str()))
                    .ok_or_else(|| {
                        format!(
                            "[page] {key} `{}`: expected an image file ({})",
                            path.display(),
                            IMAGES.join(", ")
                        )
                    })?;
                if !full.is_file() {
                    return Err(format!(
                        "[page] {key} `{}`: no such file (paths are relative to the sites file)",
                        full.display()
                    ));
                }
                Ok(Some((full, format!("{key}.{ext}"))))
            };
        let mut links = Vec::new();
        for link in &raw.links {
            let url = link.url.trim();
            let absolute = url::Url::parse(url).ok();
            let allowed = match &absolute {
                Some(u) => matches!(u.scheme(), "http" | "https" | "mailto"),
                // A relative link (`incidents.html`, `/docs`) stays on the site.
                None => !url.contains(':') || url.starts_with('/') || url.starts_with('#'),
            };
            if !allowed || link.name.trim().is_empty() {
                return Err(format!(
                    "[page] link `{}` to `{}`: expected a name and an http(s)://, mailto: or relative URL",
                    link.name, link.url
                ));
            }
            links.push((link.name.clone(), url.to_owned()));
        }
        let announcements = match &raw.announcements {
            None => Vec::new(),
            Some(path) => {
                let full = base.join(path);
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| format!("[page] announcements `{}`: {e}", full.display()))?;
                super::announcements::parse(&text)
                    .map_err(|e| format!("[page] announcements `{}`: {e}", full.display()))?
            }
        };
        Ok(Look {
            announcements,
            title: raw
                .title
                .clone()
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| "Status".to_owned()),
            description: raw.description.clone(),
            logo: image("logo", &raw.logo)?,
            favicon: image("favicon", &raw.favicon)?,
            links,
            footer: raw.footer.clone(),
            private: config.private.clone(),
            hidden_urls: config.hidden_urls.clone(),
            groups: config.groups.clone(),
            maintenance: config.maintenance().to_vec(),
        })
    }
}

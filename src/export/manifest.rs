//! The manifest that goes with every download set: what produced the files and what they hold.

use super::{file_name, ExportFile, ExportOptions, RunContext};
use serde_json::{json, Value};

/// The manifest's file name: `agenther-manifest-{stamp}.json`.
pub fn manifest_file_name(stamp: &str) -> String {
    file_name("manifest", stamp, "json")
}

/// The manifest of a download set: product and version, when it was made (`ctx.created_at`),
/// the endpoint's base URL, the model(s), every setting (there is no API key among them), the
/// prompt templates' version and fingerprint, the export options, and for each file its name,
/// target, row count, how many rows were left out for breaking a rule of the target, and every
/// value written differently from the source (integers beyond 64 bits written as strings).
pub fn manifest(ctx: &RunContext, options: &ExportOptions, files: &[&ExportFile]) -> Value {
    let mut formats: Vec<&str> = Vec::new();
    for f in files {
        if !formats.contains(&f.target.id()) {
            formats.push(f.target.id());
        }
    }
    json!({
        "product": "agenther",
        "version": crate::version(),
        "created_at": ctx.created_at,
        "endpoint": ctx.endpoint,
        "model": ctx.settings.model,
        "judge_model": ctx.settings.judge_model.as_deref().unwrap_or(&ctx.settings.model),
        "settings": ctx.settings,
        "templates": {
            "version": ctx.templates.version(),
            "fingerprint": ctx.templates.fingerprint(),
        },
        "export_options": options,
        "formats": formats,
        "files": files.iter().map(|f| json!({
            "name": f.name,
            "format": f.target.id(),
            "rows": f.rows,
            "left_out": f.left_out,
            "violations": f.violations.len(),
            "rewrites": f.rewrites,
        })).collect::<Vec<_>>(),
    })
}

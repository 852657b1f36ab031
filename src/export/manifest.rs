//! The manifest that goes with every download set: what produced the files and what they hold.

use super::{file_name, ExportFile, ExportOptions, RunContext};
use crate::json::{object, to_json, Json};

/// The manifest's file name: `agenther-manifest-{stamp}.json`.
pub fn manifest_file_name(stamp: &str) -> String {
    file_name("manifest", stamp, "json")
}

/// The manifest of a download set: product and version, when it was made (`ctx.created_at`),
/// the endpoint's base URL, the relabeling and judge models (and the judge's endpoint), every
/// setting (there is no API key among them), the prompt templates' version, SHA-256
/// fingerprint and full text, the lexicon's fingerprint and content, the export options, and
/// for each file its name, target, row count, how many rows were left out for breaking a rule
/// of the target, every value written differently from the source (integers beyond 64 bits
/// written as strings), and what review accepted, edited and rejected.
pub fn manifest(ctx: &RunContext, options: &ExportOptions, files: &[&ExportFile]) -> Json {
    let mut formats: Vec<Json> = Vec::new();
    for f in files {
        let id = Json::from(f.target.id());
        if !formats.contains(&id) {
            formats.push(id);
        }
    }
    let method = crate::custom::describe(ctx.templates, ctx.lexicon);
    let files: Vec<Json> = files
        .iter()
        .map(|f| {
            object([
                ("name", Json::from(f.name.as_str())),
                ("format", Json::from(f.target.id())),
                ("rows", Json::from(f.rows)),
                ("left_out", Json::from(f.left_out)),
                ("violations", Json::from(f.violations.len())),
                ("rewrites", to_json(&f.rewrites)),
            ])
        })
        .collect();
    object([
        ("product", Json::from("agenther")),
        ("version", Json::from(crate::version())),
        ("created_at", Json::from(ctx.created_at)),
        ("endpoint", Json::from(ctx.endpoint)),
        ("model", Json::from(ctx.settings.model.as_str())),
        ("judge_model", Json::from(ctx.settings.judge_model_name())),
        ("models", super::models(ctx.settings)),
        ("settings", to_json(ctx.settings)),
        ("templates", method["templates"].clone()),
        ("lexicon", method["lexicon"].clone()),
        ("export_options", to_json(options)),
        ("review", super::review_json(&ctx.review)),
        ("formats", Json::from(formats)),
        ("files", Json::from(files)),
    ])
}

//! Stage 2 in LLM mode: one chat call returns the strictly factual outcome.
//!
//! The reply is taken as given: an empty list of achievements stays empty (the rule-based
//! mode's placeholder achievement is not invented here).

use crate::llm::call::run_stage_call;
use crate::llm::{
    CallKind, CallRecord, CallSettings, ChatClient, ExtractReply, StageError, Templates,
};
use crate::model::{ExtractedOutcome, Trajectory};

/// Asks the model what `trajectory` actually achieved.
pub async fn extract<C: ChatClient>(
    client: &C,
    templates: &Templates,
    settings: &CallSettings,
    trajectory: &Trajectory,
) -> Result<(ExtractedOutcome, CallRecord), StageError> {
    let messages = templates.render_extract(trajectory);
    let (reply, record) =
        run_stage_call::<C, ExtractReply>(client, CallKind::Extract, settings, messages).await?;
    Ok((outcome_from_reply(reply), record))
}

/// The outcome a reply stands for.
pub fn outcome_from_reply(reply: ExtractReply) -> ExtractedOutcome {
    ExtractedOutcome {
        actual_achievements: reply.actual_achievements,
        key_observations: reply.key_observations,
        limitations: reply.limitations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{ChatError, ResponseFormat};
    use crate::model::Step;
    use futures::executor::block_on;

    #[test]
    fn reply_becomes_outcome() {
        let trajectory = Trajectory {
            trajectory_id: "t".into(),
            original_prompt: "Find a flight under $100".into(),
            steps: vec![Step {
                thought: String::new(),
                action_name: "flights".into(),
                action_input: Default::default(),
                observation: "AB123 LHR-CDG $140, CD456 LHR-CDG $155".into(),
                call: None,
                kind: Default::default(),
            }],
            final_answer: String::new(),
            failure_reason: String::new(),
            metadata: Default::default(),
            origin: None,
        };
        let client = ScriptedClient::with_replies([Ok::<_, ChatError>(
            r#"{"actual_achievements": ["Listed two LHR-CDG flights with prices"],
                "key_observations": ["AB123 costs $140", "CD456 costs $155"],
                "limitations": "No flight under $100"}"#,
        )]);
        let (outcome, record) = block_on(extract(
            &client,
            &Templates::defaults(),
            &CallSettings::new("m"),
            &trajectory,
        ))
        .unwrap();
        assert_eq!(outcome.key_observations.len(), 2);
        assert_eq!(outcome.limitations, "No flight under $100");
        assert_eq!(record.kind, CallKind::Extract);
        match &client.requests()[0].response_format {
            Some(ResponseFormat::JsonSchema { name, strict, .. }) => {
                assert_eq!(name, "extracted_outcome");
                assert!(*strict);
            }
            other => panic!("unexpected response format {other:?}"),
        }
    }
}

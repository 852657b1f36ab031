//! Stage 1 in LLM-judge mode: one chat call returns the failure analysis.
//!
//! The judge returns `severity` (how far the run is from its goal) and the paper's severity
//! weight `weight` separately (METHOD.md, "Severity and weight"): `weight` is low for major
//! flaws and is what the δ gate and the sample weight use.

use crate::llm::call::run_stage_call;
use crate::llm::{
    CallKind, CallRecord, CallSettings, ChatClient, DetectReply, StageError, Templates,
};
use crate::model::{FailureAnalysis, Trajectory};

/// Asks the judge for a failure analysis of `trajectory`.
pub async fn detect<C: ChatClient>(
    client: &C,
    templates: &Templates,
    settings: &CallSettings,
    trajectory: &Trajectory,
) -> Result<(FailureAnalysis, CallRecord), StageError> {
    let messages = templates.render_detect(trajectory);
    let (reply, record) =
        run_stage_call::<C, DetectReply>(client, CallKind::Detect, settings, messages).await?;
    Ok((analysis_from_reply(reply), record))
}

/// The analysis a judge's reply stands for.
pub fn analysis_from_reply(reply: DetectReply) -> FailureAnalysis {
    FailureAnalysis {
        is_failure: reply.is_failure,
        failure_type: reply.failure_type,
        severity: reply.severity,
        weight: reply.weight,
        recoverable: reply.recoverable,
        explanation: reply.explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{ChatError, StructuredMode, Usage};
    use crate::model::{FailureType, Step};
    use futures::executor::block_on;

    fn trajectory() -> Trajectory {
        Trajectory {
            trajectory_id: "t1".into(),
            original_prompt: "Book a table for 4 at 7pm".into(),
            steps: vec![Step {
                thought: "Look for restaurants".into(),
                action_name: "search".into(),
                action_input: Default::default(),
                observation: "Luigi's: open 6pm-11pm, tables for 2 only".into(),
                call: None,
                kind: Default::default(),
            }],
            final_answer: String::new(),
            failure_reason: "No table for 4".into(),
            metadata: Default::default(),
            origin: None,
        }
    }

    #[test]
    fn judge_reply_becomes_analysis() {
        let client = ScriptedClient::with_replies([Ok::<_, ChatError>(
            "```json\n{\"is_failure\": true, \"failure_type\": \"constraint_violation\", \
             \"severity\": 0.6, \"weight\": 0.8, \"recoverable\": true, \"explanation\": \"e\"}\n```",
        )])
        .with_usage(Usage::new(100, 20));
        let mut settings = CallSettings::new("judge-model");
        settings.structured = StructuredMode::PromptOnly;
        let (analysis, record) = block_on(detect(
            &client,
            &Templates::defaults(),
            &settings,
            &trajectory(),
        ))
        .unwrap();
        assert_eq!(
            analysis.failure_type,
            Some(FailureType::ConstraintViolation)
        );
        assert_eq!((analysis.severity, analysis.weight), (0.6, 0.8));
        assert!(analysis.recoverable && analysis.is_failure);
        assert_eq!(record.kind, CallKind::Detect);
        assert_eq!(record.usage.prompt_tokens, 100);
        let req = &client.requests()[0];
        assert_eq!(req.model, "judge-model");
        assert_eq!(req.temperature, 0.3);
        assert!(req.response_format.is_none());
        assert!(req.messages[1].content.contains("Luigi's"));
    }

    #[test]
    fn failures_keep_their_record() {
        let client = ScriptedClient::with_replies([Ok("{}"), Err(ChatError::Timeout)]);
        let settings = CallSettings::new("m");
        let t = Templates::defaults();
        let e = block_on(detect(&client, &t, &settings, &trajectory())).unwrap_err();
        assert!(matches!(e, StageError::Unparseable(_)));
        assert!(e.to_string().contains("missing field `is_failure`"), "{e}");
        let e = block_on(detect(&client, &t, &settings, &trajectory())).unwrap_err();
        assert!(matches!(e, StageError::Call(_)));
        assert!(e.call().unwrap().failed());
        assert_eq!(e.to_string(), "call failed: the request timed out");
    }
}

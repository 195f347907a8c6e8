//! `token list`: the base's API tokens and which one Vault holds.
//!
//! SeaTable's list answers every token's value; each is reduced to a
//! digest while the answer is parsed ([`crate::seatable::account`]) and
//! compared with the digest of the token in Vault. No value is kept,
//! printed or logged.

use anyhow::Result;
use serde::Serialize;

use super::Ctx;
use crate::seatable::account::{BaseRef, Digest};

#[derive(Serialize)]
pub struct Listing {
    #[serde(flatten)]
    pub base: BaseRef,
    pub api_tokens: Vec<TokenInfo>,
}

/// One token, without its value.
#[derive(Serialize, Debug, PartialEq)]
pub struct TokenInfo {
    pub app_name: String,
    pub permission: String,
    pub generated_by: Option<String>,
    pub generated_at: Option<String>,
    pub last_access: Option<String>,
    /// Whether the profile's secret holds this token.
    pub in_vault: bool,
}

pub async fn list(ctx: &mut Ctx<'_>) -> Result<Listing> {
    let (token, opened) = ctx.vault_base().await?;
    let held = Digest::of(&token);
    drop(token);
    let api_tokens = ctx
        .tokens(&opened.base)
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            in_vault: t.digest == held,
            app_name: t.app_name,
            permission: t.permission,
            generated_by: t.generated_by,
            generated_at: t.generated_at,
            last_access: t.last_access,
        })
        .collect();
    Ok(Listing {
        base: opened.base,
        api_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_is_pinned() {
        let listing = Listing {
            base: BaseRef {
                workspace_id: 7,
                name: "CRM".into(),
            },
            api_tokens: vec![TokenInfo {
                app_name: "crm-20251130215500".into(),
                permission: "rw".into(),
                generated_by: Some("ops@example.com".into()),
                generated_at: Some("2025-11-30T21:55:00+00:00".into()),
                last_access: None,
                in_vault: true,
            }],
        };
        assert_eq!(
            serde_json::to_string(&listing).unwrap(),
            r#"{"workspace_id":7,"dtable_name":"CRM","api_tokens":[{"app_name":"crm-20251130215500","permission":"rw","generated_by":"ops@example.com","generated_at":"2025-11-30T21:55:00+00:00","last_access":null,"in_vault":true}]}"#
        );
    }
}

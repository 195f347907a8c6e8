//! The age of the API token in Vault, for `doctor`: when SeaTable says it
//! was generated (`generated_at` of the base's token list).

use std::time::Duration;

use anyhow::Result;

use super::Ctx;
use crate::error::Failure;
use crate::seatable::account::Digest;

pub struct TokenAge {
    pub app_name: String,
    pub generated_at: Option<String>,
    /// `None` when `generated_at` is missing or unreadable.
    pub age: Option<Duration>,
}

pub async fn token_age(ctx: &mut Ctx<'_>) -> Result<TokenAge> {
    let (token, opened) = ctx.vault_base().await?;
    let held = Digest::of(&token);
    drop(token);
    let listed = ctx.tokens(&opened.base).await?;
    let me = listed
        .into_iter()
        .find(|t| t.digest == held)
        .ok_or_else(|| {
            Failure::seatable(format!(
                "the API token in {} is not among the API tokens of base {} the account sees",
                ctx.profile.secret, opened.base
            ))
        })?;
    let age = me
        .generated_at
        .as_deref()
        .and_then(crate::seatable::account::unix_seconds)
        .map(|at| Duration::from_secs(crate::time::now().saturating_sub(at)));
    Ok(TokenAge {
        app_name: me.app_name,
        generated_at: me.generated_at,
        age,
    })
}

#[cfg(test)]
mod tests {
    use crate::seatable::account::unix_seconds;

    #[test]
    fn reads_seatable_times() {
        assert_eq!(
            unix_seconds("2019-09-19T02:41:53+00:00"),
            Some(1_568_860_913)
        );
        assert_eq!(
            unix_seconds("2019-09-19T10:41:53+08:00"),
            Some(1_568_860_913)
        );
        assert_eq!(unix_seconds("2019-09-19T02:41:53Z"), Some(1_568_860_913));
        assert_eq!(
            unix_seconds("2019-09-19T02:41:53.123456+00:00"),
            Some(1_568_860_913)
        );
        assert_eq!(unix_seconds("yesterday"), None);
        assert_eq!(unix_seconds("1969-12-31T23:59:59Z"), None);
    }
}

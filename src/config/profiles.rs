//! Profiles for the team admin's commands (`token audit`, `token revoke
//! --base`): every profile of the config file by its own settings (their
//! secrets count as holding a token; the names come from
//! [`super::file::profile_names`]), and a current profile that names no
//! secret of its own (a team admin's audit reads no API token itself).

use anyhow::Result;

use super::file::profile_table;
use super::{Env, GlobalArgs, Profile, SecretRef, resolve_table};

/// What a profile without `secret` gets in [`Profile::secret`]: a
/// placeholder that nothing reads (see [`resolve_settings`]).
const UNNAMED: &str = "-/-";

/// The current profile of a command that reads no API token of its own:
/// as [`super::resolve`], but a profile without `secret` resolves too. The
/// secret it names, if any, is returned beside it.
pub fn resolve_settings(args: &GlobalArgs, env: &dyn Env) -> Result<(Profile, Option<SecretRef>)> {
    let (name, mut file, place) = profile_table(args, env)?;
    let named = args.secret.is_some() || file.secret.is_some();
    if !named {
        file.secret = Some(UNNAMED.to_string());
    }
    let profile = resolve_table(args, env, name, &file, &place)?;
    let secret = named.then(|| profile.secret.clone());
    Ok((profile, secret))
}

/// Profile `name` of the config file as `seatable-cred --profile NAME`
/// resolves it here without other flags: the file's settings, and the
/// environment where it has a say (`VAULT_ADDR`, `VAULT_TOKEN`, …).
pub fn resolve_named(args: &GlobalArgs, env: &dyn Env, name: &str) -> Result<Profile> {
    let other = GlobalArgs {
        profile: Some(name.to_string()),
        config: args.config.clone(),
        ..GlobalArgs::default()
    };
    super::resolve(&other, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::profile_names;

    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn config(text: &str) -> (tempfile::TempDir, GlobalArgs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let args = GlobalArgs {
            config: Some(path),
            ..GlobalArgs::default()
        };
        (dir, args)
    }

    #[test]
    fn a_profile_without_a_secret_resolves_for_the_team_admin() {
        let (_dir, mut args) = config(
            "[profiles.default]\nserver_url = \"https://s.example\"\n\n[profiles.crm]\nserver_url = \"https://s.example\"\nsecret = \"secret/seatable/crm\"\n",
        );
        let (profile, secret) = resolve_settings(&args, &NoEnv).unwrap();
        assert_eq!(profile.server_url, "https://s.example");
        assert_eq!(secret, None);
        args.profile = Some("crm".into());
        let (_, secret) = resolve_settings(&args, &NoEnv).unwrap();
        assert_eq!(secret, SecretRef::parse("secret/seatable/crm"));
        // The other commands still need one.
        args.profile = None;
        assert!(super::super::resolve(&args, &NoEnv).is_err());
    }

    #[test]
    fn every_profile_of_the_file_by_its_own_settings() {
        let (_dir, mut args) = config(
            "[profiles.a]\nserver_url = \"https://s.example\"\nsecret = \"secret/a\"\n\n[profiles.b]\nserver_url = \"https://s.example\"\nsecret = \"kv1/b\"\nfield = \"token\"\n",
        );
        assert_eq!(profile_names(&args, &NoEnv).unwrap(), ["a", "b"]);
        // Flags of the current call are not the other profiles' settings.
        args.secret = Some("secret/flag".into());
        args.profile = Some("a".into());
        let b = resolve_named(&args, &NoEnv, "b").unwrap();
        assert_eq!(b.secret.to_string(), "kv1/b");
        assert_eq!(b.field, "token");
        let missing = GlobalArgs {
            config: Some(args.config.clone().unwrap().with_file_name("none.toml")),
            ..GlobalArgs::default()
        };
        assert!(
            profile_names(&missing, &NoEnv).is_err(),
            "an explicit file must exist"
        );
    }
}

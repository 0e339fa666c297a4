//! `USER` / `-u` resolution against the image's `/etc/passwd` and
//! `/etc/group`, with runc's `GetExecUser` rules (which Docker uses):
//!
//! - `name` or `uid`, optionally `:group` or `:gid`; a number is always an ID;
//! - a name must exist in passwd; a number need not (its gid is then 0);
//! - without an explicit group, the passwd entry's gid is the primary group
//!   and every group listing the user by name is a supplementary group;
//! - with an explicit group there are no supplementary groups from the file.
//!
//! The files arrive as text (missing file = empty text); nothing here reads
//! the rootfs. Malformed lines are skipped.

use crate::error::SpecError;

/// The highest uid/gid runc accepts (`1<<31 - 1`).
const MAX_ID: i64 = 2_147_483_647;

/// The identity a user spec resolves to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups from `/etc/group` membership, in file order.
    pub sgids: Vec<u32>,
    /// The passwd entry's home directory, empty when there is none.
    pub home: String,
}

#[derive(Debug)]
struct PasswdEntry<'a> {
    name: &'a str,
    uid: i64,
    gid: i64,
    home: &'a str,
}

#[derive(Debug)]
struct GroupEntry<'a> {
    name: &'a str,
    gid: i64,
    members: Vec<&'a str>,
}

fn parse_passwd(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next();
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        let _gecos = fields.next();
        let home = fields.next().unwrap_or("");
        Some(PasswdEntry {
            name,
            uid,
            gid,
            home,
        })
    })
}

fn parse_group(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next();
        let gid = fields.next()?.parse().ok()?;
        let members = fields
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        Some(GroupEntry { name, gid, members })
    })
}

fn to_id(n: i64) -> Result<u32, SpecError> {
    if (0..=MAX_ID).contains(&n) {
        u32::try_from(n).map_err(|_| SpecError::IdOutOfRange)
    } else {
        Err(SpecError::IdOutOfRange)
    }
}

/// Resolves a user spec (`""` = root) against passwd and group text.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<ExecUser, SpecError> {
    let mut parts = spec.splitn(3, ':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let uid_arg: Option<i64> = user_arg.parse().ok();
    let gid_arg: Option<i64> = group_arg.parse().ok();

    let mut user = ExecUser::default();
    let matched = parse_passwd(passwd).find(|u| {
        if user_arg.is_empty() {
            u.uid == 0
        } else if let Some(uid) = uid_arg {
            u.uid == uid
        } else {
            u.name == user_arg
        }
    });

    let matched_name = match &matched {
        Some(entry) => {
            user.uid = to_id(entry.uid)?;
            user.gid = to_id(entry.gid)?;
            user.home = entry.home.to_string();
            Some(entry.name)
        }
        None if user_arg.is_empty() => None,
        None => match uid_arg {
            Some(uid) => {
                user.uid = to_id(uid)?;
                None
            }
            None => return Err(SpecError::UserNotFound(user_arg.to_string())),
        },
    };

    if !group_arg.is_empty() {
        let found = parse_group(group).find(|g| match gid_arg {
            Some(gid) => g.gid == gid,
            None => g.name == group_arg,
        });
        user.gid = match (found, gid_arg) {
            (Some(g), _) => to_id(g.gid)?,
            (None, Some(gid)) => to_id(gid)?,
            (None, None) => return Err(SpecError::GroupNotFound(group_arg.to_string())),
        };
    } else if let Some(name) = matched_name {
        for g in parse_group(group) {
            if g.members.contains(&name) {
                user.sgids.push(to_id(g.gid)?);
            }
        }
    }
    Ok(user)
}

/// Resolves `--group-add` entries (group names or numbers) to gids, in the
/// order given, without duplicates.
pub fn resolve_additional_groups(groups: &[String], group: &str) -> Result<Vec<u32>, SpecError> {
    let mut gids = Vec::new();
    for wanted in groups {
        let found = parse_group(group).find(|g| g.name == wanted || g.gid.to_string() == *wanted);
        let gid = match found {
            Some(g) => to_id(g.gid)?,
            None => match wanted.parse::<i64>() {
                Ok(n) => to_id(n)?,
                Err(_) => return Err(SpecError::AdditionalGroupNotFound(wanted.clone())),
            },
        };
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    Ok(gids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        \n\
        broken:x:notanumber:1::/:/bin/sh\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        dup:x:1000:5::/nowhere:/bin/sh\n";
    const GROUP: &str = "root:x:0:root\n\
        bin:x:1:root,bin,daemon\n\
        tty:x:5:\n\
        staff:x:50:app, daemon\n\
        app:x:1000:\n\
        video:x:44:app\n";

    #[test]
    fn table() {
        let cases: &[(&str, u32, u32, &[u32])] = &[
            ("", 0, 0, &[0, 1]),
            ("root", 0, 0, &[0, 1]),
            ("0", 0, 0, &[0, 1]),
            ("app", 1000, 1000, &[50, 44]),
            ("1000", 1000, 1000, &[50, 44]),
            ("daemon", 1, 1, &[1, 50]),
            ("app:tty", 1000, 5, &[]),
            ("app:5", 1000, 5, &[]),
            ("1000:staff", 1000, 50, &[]),
            ("4242", 4242, 0, &[]),
            ("4242:4343", 4242, 4343, &[]),
            ("4242:video", 4242, 44, &[]),
        ];
        for (spec, uid, gid, sgids) in cases {
            let user = resolve_user(spec, PASSWD, GROUP).unwrap();
            assert_eq!(
                (user.uid, user.gid, &user.sgids[..]),
                (*uid, *gid, *sgids),
                "{spec}"
            );
        }
        assert_eq!(
            resolve_user("app", PASSWD, GROUP).unwrap().home,
            "/home/app"
        );
    }

    #[test]
    fn errors() {
        let err = resolve_user("nobody", PASSWD, GROUP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        let err = resolve_user("app:nogroup", PASSWD, GROUP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert!(matches!(
            resolve_user("-1", PASSWD, GROUP),
            Err(SpecError::IdOutOfRange)
        ));
        assert!(matches!(
            resolve_user("2147483648", PASSWD, GROUP),
            Err(SpecError::IdOutOfRange)
        ));
        // Missing files are empty: names fail, numbers work, root is root.
        assert!(resolve_user("app", "", "").is_err());
        assert_eq!(resolve_user("7:8", "", "").unwrap().gid, 8);
        assert_eq!(resolve_user("", "", "").unwrap(), ExecUser::default());
    }

    #[test]
    fn additional_groups() {
        let add = |v: &[&str]| {
            resolve_additional_groups(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), GROUP)
        };
        assert_eq!(
            add(&["video", "5", "777", "tty"]).unwrap(),
            vec![44, 5, 777]
        );
        assert_eq!(
            add(&["nope"]).unwrap_err().to_string(),
            "Unable to find group nope: no matching entries in group file"
        );
    }
}

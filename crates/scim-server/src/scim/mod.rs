//! The SCIM protocol endpoints (RFC 7644): the resources (`resources`), list and search
//! (`list`), `/Bulk` (`bulk`), discovery (`discovery`), and the password hashing the User
//! resource needs (`password`).

pub(crate) mod bulk;
pub(crate) mod discovery;
pub(crate) mod list;
pub(crate) mod password;
pub(crate) mod resources;

//! Requests checked against the vendors' own API descriptions (tests/common/vendor_docs.rs):
//! the checker on small documents written here (always run), the checker on the real documents
//! fetched by `bash tests/vendor-docs.sh` (Google's Discovery documents, GitHub's OpenAPI;
//! skipped locally when absent, a failure under CI), and every request the `github` adapter
//! sends in its scenarios against GitHub's description.

use serde_json::{Value, json};

use crate::common::fake_github::FakeGitHub;
use crate::common::fake_kit::Recorded;
use crate::common::vendor_docs::{Doc, VendorDocs, recorded};

fn rejected(docs: &VendorDocs, r: &Recorded) -> String {
    match docs.check(r) {
        Ok(op) => panic!("{} passed as {op}", r.line()),
        Err(v) => v.join("; "),
    }
}

fn passes(docs: &VendorDocs, r: &Recorded) -> String {
    docs.check(r)
        .unwrap_or_else(|v| panic!("{}: {}", r.line(), v.join("; ")))
}

fn with_content_type(mut r: Recorded, ct: &str) -> Recorded {
    r.headers.retain(|(n, _)| n != "content-type");
    r.headers.push(("content-type".into(), ct.into()));
    r
}

// ---------------------------------------------------------------------------------------------
// The checker on small documents

fn small_openapi() -> VendorDocs {
    let doc = json!({
        "openapi": "3.0.3",
        "servers": [{ "url": "https://api.example.test/v2" }],
        "paths": {
            "/things/{id}": {
                "parameters": [{ "name": "id", "in": "path", "required": true,
                                 "schema": { "type": "integer" } }],
                "put": {
                    "operationId": "things/put",
                    "parameters": [
                        { "name": "tags", "in": "query", "schema": {
                            "type": "array", "items": { "type": "string", "enum": ["a", "b"] } } },
                        { "name": "X-Tenant", "in": "header", "required": true,
                          "schema": { "type": "string" } }
                    ],
                    "requestBody": { "required": true, "content": {
                        "application/json": { "schema": { "$ref": "#/components/schemas/thing" } }
                    } }
                }
            },
            "/things/special": { "get": { "operationId": "things/special" } }
        },
        "components": { "schemas": {
            "thing": { "allOf": [
                { "type": "object", "required": ["name"],
                  "properties": { "name": { "type": "string" },
                                  "id": { "type": "integer", "readOnly": true } } },
                { "type": "object", "properties": {
                    "note": { "type": "string", "nullable": true },
                    "size": { "type": "integer", "minimum": 1, "maximum": 10 },
                    "owner": { "oneOf": [
                        { "type": "object", "properties": { "login": { "type": "string" } } },
                        { "type": "object", "properties": { "email": { "type": "string" } } }
                    ] },
                    "labels": { "type": "object",
                                "additionalProperties": { "type": "boolean" } }
                } }
            ] }
        } }
    });
    VendorDocs::from_docs(vec![Doc::from_value("small", doc).unwrap()])
}

fn put_thing(body: Value) -> Recorded {
    let mut r = recorded("PUT", "/v2/things/7", Some(body));
    r.headers.push(("x-tenant".into(), "t1".into()));
    r
}

#[test]
fn a_small_openapi_document_is_checked_with_refs_all_of_one_of_and_nullable() {
    let docs = small_openapi();
    let good = json!({ "name": "x", "note": null, "size": 3, "owner": { "email": "a@b" },
                       "labels": { "red": true } });
    assert_eq!(passes(&docs, &put_thing(good.clone())), "things/put");

    let cases = [
        (json!({ "note": "n" }), "missing required property name"),
        (
            json!({ "name": "x", "colour": 1 }),
            "$.colour: not a declared property (thing)",
        ),
        (json!({ "name": "x", "id": 1 }), "$.id: read-only"),
        (
            json!({ "name": 5 }),
            "$.name: integer 5, but the type is string",
        ),
        (
            json!({ "name": "x", "size": null }),
            "$.size: null, but it is not nullable",
        ),
        (json!({ "name": "x", "size": 11 }), "above the maximum 10"),
        (
            json!({ "name": "x", "owner": { "phone": "1" } }),
            "matches none of the 2",
        ),
        (
            json!({ "name": "x", "labels": { "red": "yes" } }),
            "$.labels.red: string",
        ),
    ];
    for (body, want) in cases {
        let why = rejected(&docs, &put_thing(body.clone()));
        assert!(why.contains(want), "{body}: {why}");
        assert!(why.contains("checked against small: things/put"), "{why}");
    }

    // Path, query and header parameters; the body's presence and media type.
    let mut r = put_thing(good.clone());
    r.raw_path = "/v2/things/seven".into();
    assert!(rejected(&docs, &r).contains("path parameter id=\"seven\" is not an integer"));
    let mut r = put_thing(good.clone());
    r.query = vec![("tags".into(), "a".into()), ("tags".into(), "b".into())];
    passes(&docs, &r);
    r.query.push(("tags".into(), "c".into()));
    r.query.push(("limit".into(), "1".into()));
    let why = rejected(&docs, &r);
    assert!(
        why.contains("query parameter tags=\"c\" is not one of"),
        "{why}"
    );
    assert!(why.contains("undeclared query parameter limit"), "{why}");
    let mut r = put_thing(good.clone());
    r.headers.retain(|(n, _)| n != "x-tenant");
    assert!(rejected(&docs, &r).contains("missing required header X-Tenant"));
    let mut r = put_thing(good.clone());
    (r.body, r.json) = (Vec::new(), None);
    assert!(rejected(&docs, &r).contains("requires one"));
    let r = with_content_type(put_thing(good), "text/plain");
    assert!(rejected(&docs, &r).contains("content type text/plain"));

    // The literal template wins over the parameter; a method the path does not have; a path
    // outside the server's.
    assert_eq!(
        passes(&docs, &recorded("GET", "/v2/things/special", None)),
        "things/special"
    );
    let why = rejected(&docs, &recorded("DELETE", "/v2/things/7", None));
    assert!(
        why.contains("DELETE is not an operation on this path"),
        "{why}"
    );
    assert!(why.contains("PUT /v2/things/{id}"), "{why}");
    let why = rejected(&docs, &recorded("GET", "/things/special", None));
    assert!(why.contains("no operation in small has this path"), "{why}");
    // Under a prefix of our own (GitHub Enterprise Server's `/api/v3`).
    let ghes = small_openapi().under("/api/v3");
    passes(&ghes, &recorded("GET", "/api/v3/v2/things/special", None));
    let why = rejected(&ghes, &recorded("GET", "/v2/things/special", None));
    assert!(why.contains("the path is not under /api/v3"), "{why}");
    let why = rejected(
        &docs,
        &recorded("GET", "/v2/things/special", Some(json!({}))),
    );
    assert!(why.contains("takes none"), "{why}");
}

#[test]
fn a_small_discovery_document_is_checked_with_repeated_and_global_parameters() {
    let doc = json!({
        "discoveryVersion": "v1",
        "rootUrl": "https://example.googleapis.com/",
        "servicePath": "svc/",
        "parameters": { "fields": { "type": "string", "location": "query" } },
        "schemas": {
            "Item": { "id": "Item", "type": "object", "properties": {
                "count": { "type": "string", "format": "int64" },
                "state": { "type": "string", "enum": ["ON", "OFF"] }
            } }
        },
        "resources": { "items": {
            "methods": {
                "patch": { "id": "svc.items.patch", "httpMethod": "PATCH",
                           "path": "v1/{+name}", "flatPath": "v1/items/{itemsId}",
                           "parameters": {
                               "name": { "type": "string", "location": "path", "required": true },
                               "mask": { "type": "string", "location": "query", "repeated": true },
                               "limit": { "type": "integer", "location": "query",
                                          "maximum": "5" }
                           },
                           "request": { "$ref": "Item" } }
            },
            "resources": { "parts": { "methods": {
                "list": { "id": "svc.items.parts.list", "httpMethod": "GET",
                          "path": "v1/items/{item}/parts",
                          "parameters": {
                              "item": { "type": "string", "location": "path", "required": true },
                              "owner": { "type": "string", "location": "query", "required": true }
                          } }
            } } }
        } }
    });
    let docs = VendorDocs::from_docs(vec![Doc::from_value("svc", doc).unwrap()]);
    let patch =
        |q: &str, body: Value| recorded("PATCH", &format!("/svc/v1/items/i1{q}"), Some(body));
    assert_eq!(
        passes(
            &docs,
            &patch(
                "?mask=a&mask=b&fields=id",
                json!({ "count": "12", "state": null })
            )
        ),
        "svc.items.patch"
    );
    // Google's JSON reads an int64 from a number too.
    passes(&docs, &patch("", json!({ "count": 12 })));
    let cases = [
        ("?limit=6", json!({}), "limit: 6 is above the maximum 5"),
        ("?limit=1&limit=2", json!({}), "given 2 times"),
        (
            "",
            json!({ "count": "twelve" }),
            "$.count: \"twelve\" is not an integer",
        ),
        (
            "",
            json!({ "state": "PAUSED" }),
            "$.state: \"PAUSED\" is not one of",
        ),
        (
            "",
            json!({ "colour": "red" }),
            "$.colour: not a declared property (Item)",
        ),
    ];
    for (q, body, want) in cases {
        let why = rejected(&docs, &patch(q, body));
        assert!(why.contains(want), "{q}: {why}");
    }
    let list = |q: &str| recorded("GET", &format!("/svc/v1/items/i1/parts{q}"), None);
    passes(&docs, &list("?owner=me"));
    assert!(rejected(&docs, &list("")).contains("missing required query parameter owner"));
}

// ---------------------------------------------------------------------------------------------
// The checker on the vendors' documents

fn google() -> Option<VendorDocs> {
    VendorDocs::load(&[
        "admin.directory_v1",
        "admin.datatransfer_v1",
        "licensing.v1",
        "gmail.v1",
    ])
}

fn github() -> Option<VendorDocs> {
    VendorDocs::load(&["api.github.com"])
}

#[test]
fn googles_discovery_rejects_a_user_patch_with_a_property_it_does_not_describe() {
    let Some(docs) = google() else { return };
    let user = "/admin/directory/v1/users/alice%40corp.test";
    let ok = recorded(
        "PATCH",
        user,
        Some(json!({ "suspended": true, "orgUnitPath": "/Leavers" })),
    );
    assert_eq!(passes(&docs, &ok), "directory.users.patch");

    let cases = [
        (
            json!({ "suspended": true, "suspendedReason": "left" }),
            "$.suspendedReason: not a declared property (User)",
        ),
        (
            json!({ "suspended": "yes" }),
            "$.suspended: string \"yes\", but the type is boolean",
        ),
        (
            json!({ "suspensionReason": "left" }),
            "$.suspensionReason: read-only",
        ),
        (
            json!({ "name": { "givenName": "A", "nick": "a" } }),
            "$.name.nick: not a declared property (UserName)",
        ),
    ];
    for (body, want) in cases {
        let why = rejected(&docs, &recorded("PATCH", user, Some(body.clone())));
        assert!(why.contains(want), "{body}: {why}");
        assert!(
            why.contains("directory.users.patch PATCH /admin/directory/v1/users/{userKey}"),
            "{why}"
        );
    }
    let why = rejected(
        &docs,
        &with_content_type(ok, "application/x-www-form-urlencoded"),
    );
    assert!(
        why.contains("content type application/x-www-form-urlencoded"),
        "{why}"
    );
}

#[test]
fn googles_discovery_checks_query_parameters_paths_and_bodies_of_other_methods() {
    let Some(docs) = google() else { return };
    let list = |q: &str| recorded("GET", &format!("/admin/directory/v1/users{q}"), None);
    assert_eq!(
        passes(
            &docs,
            &list("?customer=my_customer&maxResults=500&orderBy=email&fields=users(id)")
        ),
        "directory.users.list"
    );
    for (q, want) in [
        (
            "?maxResults=501",
            "query parameter maxResults: 501 is above the maximum 500",
        ),
        (
            "?maxResults=many",
            "query parameter maxResults=\"many\" is not an integer",
        ),
        (
            "?orderBy=name",
            "query parameter orderBy=\"name\" is not one of",
        ),
        ("?customer=a&customer=b", "given 2 times"),
        ("?userKey=alice", "undeclared query parameter userKey"),
    ] {
        let why = rejected(&docs, &list(q));
        assert!(why.contains(want), "{q}: {why}");
    }

    // A method without a request body; a required query parameter (licensing, another document).
    let sign_out = "/admin/directory/v1/users/alice%40corp.test/signOut";
    assert_eq!(
        passes(&docs, &recorded("POST", sign_out, None)),
        "directory.users.signOut"
    );
    assert!(rejected(&docs, &recorded("POST", sign_out, Some(json!({})))).contains("takes none"));
    let seats = "/apps/licensing/v1/product/Google-Apps/sku/1010020020/users";
    assert_eq!(
        passes(
            &docs,
            &recorded("GET", &format!("{seats}?customerId=C01"), None)
        ),
        "licensing.licenseAssignments.listForProductAndSku"
    );
    assert!(
        rejected(&docs, &recorded("GET", seats, None))
            .contains("missing required query parameter customerId")
    );

    // Data transfer: an int64 written as a string, nested through $refs and arrays.
    let transfer = |app: &str| {
        recorded(
            "POST",
            "/admin/datatransfer/v1/transfers",
            Some(json!({
                "oldOwnerUserId": "1001", "newOwnerUserId": "1002",
                "applicationDataTransfers": [{ "applicationId": app,
                    "applicationTransferParams": [{ "key": "PRIVACY_LEVEL",
                                                    "value": ["PRIVATE", "SHARED"] }] }]
            })),
        )
    };
    assert_eq!(
        passes(&docs, &transfer("55656082996")),
        "datatransfer.transfers.insert"
    );
    let why = rejected(&docs, &transfer("drive"));
    assert!(
        why.contains("$.applicationDataTransfers[0].applicationId: \"drive\" is not an integer"),
        "{why}"
    );

    // Not a Google path at all, and a method the path does not have.
    assert!(
        rejected(
            &docs,
            &recorded("GET", "/admin/directory/v1/people/alice", None)
        )
        .contains("no operation in admin.directory_v1")
    );
    let why = rejected(
        &docs,
        &recorded("POST", "/admin/directory/v1/users/alice", Some(json!({}))),
    );
    assert!(
        why.contains("POST is not an operation on this path"),
        "{why}"
    );
}

#[test]
fn githubs_openapi_rejects_a_wrong_role_an_unknown_path_and_a_wrong_body() {
    let Some(docs) = github() else { return };
    let inv = |q: &str| recorded("GET", &format!("/orgs/acme-corp/invitations{q}"), None);
    assert_eq!(
        passes(
            &docs,
            &inv("?role=admin&invitation_source=member&per_page=100&page=2")
        ),
        "orgs/list-pending-invitations"
    );
    let why = rejected(&docs, &inv("?role=owner"));
    assert!(
        why.contains("query parameter role=\"owner\" is not one of"),
        "{why}"
    );
    assert!(why.contains("GET /orgs/{org}/invitations"), "{why}");
    assert!(rejected(&docs, &inv("?per_page=all")).contains("per_page=\"all\" is not an integer"));
    assert!(rejected(&docs, &inv("?state=pending")).contains("undeclared query parameter state"));

    let why = rejected(
        &docs,
        &recorded("GET", "/org/acme-corp/memberships/alice", None),
    );
    assert!(
        why.contains("no operation in api.github.com has this path"),
        "{why}"
    );
    let why = rejected(
        &docs,
        &recorded("PATCH", "/orgs/acme-corp/memberships/alice", None),
    );
    assert!(
        why.contains("PATCH is not an operation on this path"),
        "{why}"
    );
    assert!(
        why.contains("DELETE /orgs/{org}/memberships/{username}"),
        "{why}"
    );
    let why = rejected(
        &docs,
        &recorded("DELETE", "/orgs/acme-corp/invitations/first", None),
    );
    assert!(
        why.contains("path parameter invitation_id=\"first\" is not an integer"),
        "{why}"
    );

    let membership = |body: Value| recorded("PUT", "/orgs/acme-corp/memberships/alice", Some(body));
    assert_eq!(
        passes(&docs, &membership(json!({ "role": "admin" }))),
        "orgs/set-membership-for-user"
    );
    assert!(
        rejected(&docs, &membership(json!({ "role": "owner" })))
            .contains("$.role: \"owner\" is not one of")
    );
    assert!(
        rejected(
            &docs,
            &membership(json!({ "role": "admin", "notify": true }))
        )
        .contains("$.notify: not a declared property")
    );
    assert!(
        rejected(
            &docs,
            &recorded(
                "POST",
                "/orgs/acme-corp/teams",
                Some(json!({ "privacy": "closed" }))
            )
        )
        .contains("missing required property name")
    );
    let token = |body: Value| recorded("POST", "/app/installations/4242/access_tokens", Some(body));
    passes(
        &docs,
        &token(json!({ "permissions": { "members": "write" } })),
    );
    let why = rejected(
        &docs,
        &token(json!({ "permissions": { "members": "admin" } })),
    );
    assert!(
        why.contains("$.permissions.members: \"admin\" is not one of [\"read\",\"write\"]"),
        "{why}"
    );
}

#[tokio::test]
async fn every_request_of_the_github_adapter_matches_githubs_openapi() {
    let Some(docs) = github() else { return };
    let fake = FakeGitHub::start("acme-corp", "github_pat_11AAfake0token0Zq81").await;
    crate::github_fake::run_every_action(&fake).await;
    let requests = fake.requests();
    docs.assert_matches(&requests);
    // Every operation the adapter uses was exercised (the check above is not of an empty list).
    let used: Vec<String> = docs.operations(&requests).into_iter().collect();
    assert_eq!(
        used,
        [
            "apps/create-installation-access-token",
            "orgs/cancel-invitation",
            "orgs/create-invitation",
            "orgs/get-membership-for-user",
            "orgs/list-invitation-teams",
            "orgs/list-outside-collaborators",
            "orgs/list-pending-invitations",
            "orgs/remove-membership-for-user",
            "orgs/remove-outside-collaborator",
            "orgs/set-membership-for-user",
            "teams/add-or-update-membership-for-user-in-org",
            "teams/get-membership-for-user-in-org",
            "teams/list",
            "users/get-by-username",
        ]
    );
    fake.assert_contract();
}

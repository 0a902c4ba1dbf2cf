use ssesim_scenarios::parse_str;
#[test]
fn probe() {
    let base = |steps: &str| {
        format!(
            r#"{{"schema":1,"name":"x","topology":{{"clients":2}},"duration_ms":1000,"steps":[{steps}]}}"#
        )
    };
    let cases = [
        base(r#"{"at_ms":1,"do":"connect","client":0},{"at_ms":100,"do":"sendd","client":0}"#),
        base(r#"{"at_ms":1,"do":"connect","client":0},{"at_ms":100,"do":"send"}"#),
        base(r#"{"at_ms":1,"do":"connect","client":0},{"at_ms":100,"do":"send","client":"0"}"#),
        base(r#"{"at_ms":1,"do":"connect","client":0},{"at_ms":100,"do":"send","client":0,"foo":1}"#),
        base(r#"{"at_ms":1,"do":"connect","client":0},{"do":"send","client":0}"#),
        base(r#"{"at_ms":1,"do":"connect","client":0},{"at_ms":"x","do":"send","client":0}"#),
        base(r#"{"at_ms":1,"client":0}"#),
        base(r#"{"at_ms":1,"do":"inject_status","endpoint":"sendx","status":500}"#),
        base(r#"{"at_ms":1,"do":"session_state","session":"a","state":"FOO"}"#),
        base(r#"{"at_ms":1,"do":"crash","client":0}"#),
        base(r#"{"at_ms":1,"do":"partition","client":0,"direction":"up"}"#),
        base(r#"{"at_ms":1,"do":"inject_status","endpoint":"events","status":500}"#),
        base(r#"{"at_ms":1,"do":"lose_response","endpoint":"events"}"#),
        base(r#"3"#),
        r#"{"schema":1,"name":"x","topology":{"clients":"2"},"duration_ms":1000}"#.to_string(),
        r#"{"schema":1,"name":"x","topology":{"clients":2},"duration_ms":1000,"bogus":1}"#.to_string(),
        r#"{"schema":1,"name":"x","topology":{"clients":2}}"#.to_string(),
        r#"{"schema":1,"name":"x","topology":{"clients":2},"duration_ms":1000,"network":{"foo":1}}"#.to_string(),
        r#"not json"#.to_string(),
        "".to_string(),
        "{\"schema\":1,".to_string(),
    ];
    for c in cases {
        match parse_str(&c) {
            Ok(s) => println!("OK {:?}", s.steps),
            Err(e) => println!("ERR {e}\n   {e:?}"),
        }
    }
}

//! Test cases from captured JUnit XML (any producer's dialect: testsuite/testcase, failure,
//! error and skipped children, messages and text), for the `test:` metrics.

#[allow(unused_imports)]
use super::*;

/// True when a captured artifact looks like a JUnit XML report.
pub fn looks_like_junit(path: &str, media_type: &str, data: &[u8]) -> bool {
    let xml = media_type.contains("xml") || path.ends_with(".xml");
    let head = &data[..data.len().min(4096)];
    xml && String::from_utf8_lossy(head).contains("<testsuite")
}

/// The test cases of a JUnit XML document: (suite, case, metric). A document cut short (an
/// artifact over its size cap) yields the cases before the cut.
pub fn junit_cases(xml: &str, at_s: f64) -> Vec<(String, String, Metric)> {
    use quick_xml::events::Event;
    use quick_xml::XmlVersion;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut suite = String::new();
    // The case being read: (suite, name, time, status, message, text).
    let mut case: Option<(String, String, f64, String, String, String)> = None;
    let mut in_fail = false;
    let attrs = |e: &quick_xml::events::BytesStart<'_>| -> HashMap<String, String> {
        e.attributes()
            .flatten()
            .filter_map(|a| {
                let k = a.key.as_ref().to_string();
                let v = a
                    .normalized_value(XmlVersion::Implicit1_0)
                    .ok()?
                    .into_owned();
                Some((k, v))
            })
            .collect()
    };
    let finish = |c: (String, String, f64, String, String, String),
                  out: &mut Vec<(String, String, Metric)>| {
        let (s, n, t, status, msg, text) = c;
        let mut detail = msg;
        let first_text = text.lines().map(str::trim).find(|l| !l.is_empty());
        if let Some(l) = first_text {
            if !detail.contains(l) {
                if !detail.is_empty() {
                    detail.push_str(" | ");
                }
                detail.push_str(l);
            }
        }
        out.push((
            s,
            n,
            Metric {
                unit: Unit::Seconds,
                value: t,
                status: status.into(),
                flapped: false,
                at_s,
                detail: clip(&detail, 400),
                clock: String::new(),
                attempts: 0,
            },
        ));
    };
    loop {
        let ev = match r.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(ev) => ev,
        };
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let tag = e.local_name().as_ref().to_string();
                match tag.as_str() {
                    "testsuite" => {
                        suite = attrs(&e).remove("name").unwrap_or_default();
                    }
                    "testcase" => {
                        let a = attrs(&e);
                        let s = a
                            .get("classname")
                            .filter(|c| !c.is_empty())
                            .cloned()
                            .unwrap_or_else(|| suite.clone());
                        let n = a.get("name").cloned().unwrap_or_default();
                        let t = a.get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0);
                        let c = (s, n, t, "passed".to_string(), String::new(), String::new());
                        if empty {
                            finish(c, &mut out);
                        } else {
                            case = Some(c);
                        }
                    }
                    "failure" | "error" | "skipped" => {
                        if let Some(c) = case.as_mut() {
                            c.3 = match tag.as_str() {
                                "failure" => "failed",
                                "error" => "error",
                                _ => "skipped",
                            }
                            .into();
                            let a = attrs(&e);
                            c.4 = a.get("message").cloned().unwrap_or_default();
                            in_fail = !empty;
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_fail => {
                if let Some(c) = case.as_mut() {
                    c.5.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) if in_fail => {
                if let Some(c) = case.as_mut() {
                    c.5.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(g) if in_fail => {
                if let Some(c) = case.as_mut() {
                    let s = match g.as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    };
                    c.5.push_str(s);
                    if let Ok(Some(ch)) = g.resolve_char_ref() {
                        c.5.push(ch);
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "testcase" => {
                    if let Some(c) = case.take() {
                        finish(c, &mut out);
                    }
                    in_fail = false;
                }
                "failure" | "error" | "skipped" => in_fail = false,
                _ => {}
            },
            _ => {}
        }
    }
    out
}

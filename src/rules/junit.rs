//! The one JUnit XML writer: every test's `test.xml`. Its format is the one
//! container-structure-test writes (Go `encoding/xml`: one line, Go's escaping and float
//! formatting), so a structure test's report is byte-for-byte CST's, and other tests (sh_test,
//! go_test without their own XML) get the same shape with one test case named by the label.
//! CI JUnit readers (Jenkins, GitHub, GitLab) read both.

use std::fmt::Write as _;
use std::time::Duration;

/// One test case.
pub struct Case<'a> {
    pub name: &'a str,
    pub duration: Duration,
    /// One `<failure>` each; none for a passed case.
    pub failures: &'a [String],
    pub stdout: &'a str,
    pub stderr: &'a str,
}

/// `<testsuites>` with one `<testsuite>` named `suite` holding `cases`.
pub fn write(suite: &str, cases: &[Case]) -> String {
    let failed = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let total: Duration = cases.iter().map(|c| c.duration).sum();
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = write!(
        out,
        r#"<testsuites failures="{failed}" tests="{}" time="{}"><testsuite name="{}">"#,
        cases.len(),
        go_float(total.as_secs_f64()),
        xml_escape(suite)
    );
    for c in cases {
        let _ = write!(out, r#"<testcase name="{}" time="{}">"#, xml_escape(c.name), go_float(c.duration.as_secs_f64()));
        for f in c.failures {
            let _ = write!(out, "<failure>{}</failure>", xml_escape(f));
        }
        let _ =
            write!(out, "<system-out>{}</system-out><system-err>{}</system-err></testcase>", xml_escape(c.stdout), xml_escape(c.stderr));
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}

/// Go `xml.EscapeText` (newlines escaped, characters outside XML's range replaced by U+FFFD).
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if (c as u32) < 0x20 || matches!(c as u32, 0xFFFE | 0xFFFF) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)` for non-negative finite values.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned();
    }
    // Shortest round-trip digits and exponent, from Rust's `{:e}` ("1.2345e-5").
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..21).contains(&exp) {
        let mut m = digits[..1].to_owned();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    if exp < 0 {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            format!("{}{}", digits, "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(0.012345), "0.012345");
        assert_eq!(go_float(0.0000123), "1.23e-05");
        assert_eq!(go_float(2.0), "2");
        assert_eq!(go_float(0.0), "0");
    }

    #[test]
    fn one_failed_case() {
        let failures = ["timed out".to_owned()];
        let xml = write(
            "//a:t",
            &[Case { name: "//a:t", duration: Duration::from_millis(1500), failures: &failures, stdout: "log <1>\n", stderr: "" }],
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><testsuites failures=\"1\" tests=\"1\" time=\"1.5\"><testsuite name=\"//a:t\">\
             <testcase name=\"//a:t\" time=\"1.5\"><failure>timed out</failure><system-out>log &lt;1&gt;&#xA;</system-out>\
             <system-err></system-err></testcase></testsuite></testsuites>\n"
        );
    }
}

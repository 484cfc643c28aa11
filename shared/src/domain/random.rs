//! Random bytes for secrets and keys.

/// Fill a buffer from the operating system's CSPRNG.
///
/// Failing to read it means the machine cannot make secrets at all; nothing sensible can
/// continue, so this is the one place that aborts instead of returning an error.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source is unavailable");
    buf
}

#![allow(clippy::many_single_char_names)]

mod add;
mod bits;
mod cmp;
mod div;
mod gcd;
mod jacobi;
mod mac;
mod mod_inverse;
mod mul;
mod shl;
mod shr;
mod sub;

pub use self::add::*;
pub use self::bits::*;
pub use self::cmp::*;
pub use self::div::*;
pub use self::gcd::*;
pub use self::jacobi::*;
pub use self::mac::*;
pub use self::mod_inverse::*;
pub use self::mul::*;
pub use self::shl::*;
pub use self::shr::*;
pub use self::sub::*;

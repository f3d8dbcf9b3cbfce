// Package ktree handles the kernel source trees kelp builds patches in:
// finding the source of the target kernel (on Debian, the linux-source
// package of the same version as the kernel image), extracting it into a
// cache and preparing it once (make olddefconfig modules_prepare with the
// target's config), checking the compiler, finding the objects a patch
// reaches (the object of a changed .c file, the enabled objects that
// include a changed header) and compiling them before and after the
// patch with kbuild's own command lines plus -ffunction-sections
// -fdata-sections.
//
// The tree is never edited: original objects are kbuild's, built in the
// tree; patched sources are copies outside it, with #line directives
// after each changed hunk so the code after it keeps its __LINE__.
package ktree

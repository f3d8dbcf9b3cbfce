# Seed object with a COMDAT group, a local label section symbol and
# relocations of several types.
	.section .text.shared_helper,"axG",@progbits,shared_helper,comdat
	.globl	shared_helper
	.type	shared_helper, @function
shared_helper:
	call	ext_fn
	movq	ext_var(%rip), %rax
	leaq	.Lstr(%rip), %rdi
	ret
	.size	shared_helper, .-shared_helper

	.section .rodata.str1.1,"aMS",@progbits,1
.Lstr:
	.string	"grouped"

	.section .data.rel.local,"aw"
	.align	8
	.globl	helper_ptr
	.type	helper_ptr, @object
	.size	helper_ptr, 16
helper_ptr:
	.quad	shared_helper
	.long	shared_helper - .
	.long	0

	.section .bss.scratch,"aw",@nobits
	.align	64
scratch:
	.zero	128

	.section .note.GNU-stack,"",@progbits

/*
 * cpu_state: read what the host must know before it may run an SPL.
 *
 * One EXEC returns the system control register, the MMU setup the boot ROM
 * runs with, and both of its stack pointers:
 *
 *   SCTLR  (cp15 c1, c0, 0)   is the MMU on (bit 0)? caches (bits 2, 12)?
 *   TTBR0  (cp15 c2, c0, 0)   where the ROM's translation table lives
 *   TTBCR  (cp15 c2, c0, 2)   0: short descriptors, TTBR0 for every address
 *   DACR   (cp15 c3, c0, 0)   0x55555555: every domain is "client"
 *   sp                        the ROM's stack pointer (the mode it calls us in)
 *   sp_irq                    the IRQ-mode stack pointer, read by switching to
 *                             IRQ mode with IRQ and FIQ masked, and back
 *
 * The host checks that both stacks lie inside the SRAM the SPL thunk swaps
 * out and back, and that the MMU setup is the plain 1:1 one it can restore.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the SoC's scratch address and called in ARM state as a
 *     leaf function; nothing is passed in registers.
 *   - The result block follows the code (label `params`), PC-relative:
 *
 *         params + 0   u32 sctlr
 *         params + 4   u32 ttbr0
 *         params + 8   u32 ttbcr    0 on cores without the CPUID scheme (ARMv5),
 *                                   which have no TTBCR
 *         params + 12  u32 dacr
 *         params + 16  u32 sp
 *         params + 20  u32 sp_irq
 *
 *   - Uses only r0-r3 and r12 (caller-saved); cpsr is restored before returning.
 *   - ARMv5TE instructions only.
 */
	.syntax unified
	.arch	armv5te
	.arm
	.text
	.global	cpu_state

	.equ	MODE_MASK, 0x1F
	.equ	MODE_IRQ_MASKED, 0xD2	@ IRQ mode, IRQ and FIQ masked
	.equ	MIDR_ARCH, 0xF << 16
	.equ	ARCH_CPUID, 0xF << 16

cpu_state:
	adr	r0, params
	mrc	p15, 0, r1, c1, c0, 0	@ SCTLR
	mrc	p15, 0, r2, c2, c0, 0	@ TTBR0
	mov	r3, #0
	mrc	p15, 0, r12, c0, c0, 0	@ MIDR: is there a TTBCR?
	and	r12, r12, #MIDR_ARCH
	cmp	r12, #ARCH_CPUID
	mrceq	p15, 0, r3, c2, c0, 2	@ TTBCR
	stmia	r0!, {r1, r2, r3}
	mrc	p15, 0, r1, c3, c0, 0	@ DACR
	mov	r2, sp
	mrs	r12, cpsr
	bic	r3, r12, #MODE_MASK
	orr	r3, r3, #MODE_IRQ_MASKED
	msr	cpsr_c, r3
	mov	r3, sp			@ sp_irq
	msr	cpsr_c, r12
	stmia	r0, {r1, r2, r3}
	bx	lr
params:				@ the results land here

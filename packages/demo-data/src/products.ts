import { pick, seededRandom } from './random.ts';

export interface DemoProduct {
  id: string;
  sku: string;
  name: string;
  description: string;
  category: string;
  priceMinor: number;
  currency: string;
  images: { width: number; url: string }[];
  inventory: number;
}

/** Widths every product image is available in, narrowest first. */
export const IMAGE_WIDTHS = [160, 320, 480, 640, 960, 1280, 1920] as const;

const CATALOGUE: Record<string, { prefix: string; nouns: string[]; min: number; max: number }> = {
  audio: {
    prefix: 'AUD',
    nouns: ['Headphones', 'Speaker', 'Earbuds', 'Turntable', 'Soundbar'],
    min: 1_999,
    max: 49_999,
  },
  books: {
    prefix: 'BOK',
    nouns: ['Novel', 'Cookbook', 'Atlas', 'Field Guide', 'Anthology'],
    min: 799,
    max: 5_999,
  },
  cameras: {
    prefix: 'CAM',
    nouns: ['Camera', 'Lens', 'Tripod', 'Flash', 'Action Cam'],
    min: 2_999,
    max: 199_999,
  },
  computers: {
    prefix: 'CMP',
    nouns: ['Laptop', 'Keyboard', 'Monitor', 'Mouse', 'Dock'],
    min: 1_999,
    max: 299_999,
  },
  garden: {
    prefix: 'GDN',
    nouns: ['Trowel', 'Planter', 'Hose', 'Pruner', 'Seed Kit'],
    min: 599,
    max: 14_999,
  },
  kitchen: {
    prefix: 'KIT',
    nouns: ['Kettle', 'Knife', 'Skillet', 'Blender', 'Grinder'],
    min: 999,
    max: 39_999,
  },
  outdoors: {
    prefix: 'OUT',
    nouns: ['Tent', 'Backpack', 'Lantern', 'Sleeping Bag', 'Stove'],
    min: 1_499,
    max: 59_999,
  },
  toys: {
    prefix: 'TOY',
    nouns: ['Puzzle', 'Robot Kit', 'Board Game', 'Kite', 'Building Set'],
    min: 499,
    max: 19_999,
  },
};
const ADJECTIVES = [
  'Aurora',
  'Basalt',
  'Cedar',
  'Delta',
  'Ember',
  'Fjord',
  'Granite',
  'Harbor',
  'Indigo',
  'Juniper',
  'Kestrel',
  'Lumen',
];
const QUALITIES = [
  'hard-wearing',
  'lightweight',
  'quiet',
  'repairable',
  'compact',
  'weather-sealed',
  'hand-finished',
];
const CURRENCIES = ['USD', 'USD', 'USD', 'EUR'];

let cache: readonly DemoProduct[] | undefined;

/** 240 products over eight categories, ids `p-0001` to `p-0240`. */
export function demoProducts(): readonly DemoProduct[] {
  if (cache) return cache;
  const random = seededRandom(20_261_121);
  const categories = Object.keys(CATALOGUE);
  const products: DemoProduct[] = [];
  for (let n = 1; n <= 240; n++) {
    const category = categories[(n - 1) % categories.length] as string;
    const spec = CATALOGUE[category] as (typeof CATALOGUE)[string];
    const id = `p-${String(n).padStart(4, '0')}`;
    const name = `${pick(random, ADJECTIVES)} ${pick(random, spec.nouns)} ${100 + Math.floor(random() * 900)}`;
    const quality = pick(random, QUALITIES);
    const other = pick(
      random,
      QUALITIES.filter((q) => q !== quality),
    );
    products.push({
      id,
      sku: `${spec.prefix}-${String(n).padStart(5, '0')}`,
      name,
      description: `The ${name} is ${quality} and ${other}, made for everyday ${category}. It ships with a two-year warranty, spare parts are sold separately for at least seven years, and the packaging is fully recyclable. Care instructions and a parts diagram come in the box.`,
      category,
      priceMinor: spec.min + Math.floor(random() * (spec.max - spec.min)),
      currency: pick(random, CURRENCIES),
      images: IMAGE_WIDTHS.map((width) => ({
        width,
        url: `https://images.example.com/products/${id}/w${width}.jpg`,
      })),
      inventory: Math.floor(random() * 500),
    });
  }
  cache = Object.freeze(products);
  return cache;
}
